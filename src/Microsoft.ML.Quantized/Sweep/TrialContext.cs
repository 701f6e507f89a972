namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// What a trial runner is asked to do: train <see cref="Configuration"/> until <see cref="Epochs"/> epochs in total,
/// keeping its state in <see cref="CheckpointDirectory"/>. Under successive halving the same trial is run again with
/// a larger budget when it is promoted: resume from the checkpoint (e.g. <see cref="TrainingOptions.CheckpointDirectory"/>)
/// and train the remaining epochs.
/// </summary>
public sealed class TrialContext
{
    internal TrialContext(int trialId, QuantizationConfiguration configuration, int epochs, int previousEpochs,
        int rung, int rungCount, string checkpointDirectory, int seed)
    {
        TrialId = trialId;
        Configuration = configuration;
        Epochs = epochs;
        PreviousEpochs = previousEpochs;
        Rung = rung;
        RungCount = rungCount;
        CheckpointDirectory = checkpointDirectory;
        Seed = seed;
    }

    /// <summary>The trial's id (0-based, unique within a sweep and its resumes).</summary>
    public int TrialId { get; }

    /// <summary>What to train.</summary>
    public QuantizationConfiguration Configuration { get; }

    /// <summary>Total epochs the model should have trained when the runner returns.</summary>
    public int Epochs { get; }

    /// <summary>Epochs already trained by this trial's earlier rungs (0 on its first run); its checkpoint holds them.</summary>
    public int PreviousEpochs { get; }

    /// <summary>The successive-halving rung (0-based); always 0 without successive halving.</summary>
    public int Rung { get; }

    /// <summary>Number of rungs (1 without successive halving).</summary>
    public int RungCount { get; }

    /// <summary>This trial's own folder for checkpoints and its model file (the runner creates it when it needs it).</summary>
    public string CheckpointDirectory { get; }

    /// <summary>The training seed (the experiment's seed; the same for every trial, so trials differ only by configuration).</summary>
    public int Seed { get; }

    /// <summary>
    /// What a runner trains this trial with: a copy of <paramref name="template"/> (default <c>new TrainingOptions()</c>)
    /// with the configuration's learning rate, <see cref="TrainingOptions.Kure"/> = <paramref name="kure"/> (default
    /// <c>new KureOptions()</c>) when <see cref="QuantizationConfiguration.UseKure"/> and null otherwise, and this
    /// trial's <see cref="Epochs"/>, <see cref="Seed"/> and <see cref="CheckpointDirectory"/> (so a promoted trial resumes).
    /// </summary>
    public TrainingOptions ToTrainingOptions(TrainingOptions? template = null, KureOptions? kure = null)
    {
        var training = Configuration.ToTrainingOptions(template);
        training.Kure = Configuration.UseKure ? kure?.Clone() ?? new KureOptions() : null;
        training.Epochs = Epochs;
        training.Seed = Seed;
        training.CheckpointDirectory = CheckpointDirectory;
        return training;
    }
}
