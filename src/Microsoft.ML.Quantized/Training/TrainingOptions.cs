namespace Microsoft.ML.Quantized;

/// <summary>
/// How a model is trained. Defaults follow the classic PTB recipe (SGD, learning rate 20, decay by 4 on a
/// validation plateau, gradient clipping 0.25, batch 20, BPTT 35).
/// </summary>
public sealed class TrainingOptions
{
    /// <summary>Passes over the training data. Default 6.</summary>
    public int Epochs { get; set; } = 6;

    /// <summary>Sequences per batch (parallel token columns for a language model). Default 20.</summary>
    public int BatchSize { get; set; } = 20;

    /// <summary>Truncated-BPTT window in time steps (language models). Default 35.</summary>
    public int SequenceLength { get; set; } = 35;

    /// <summary>The optimizer. Default <see cref="OptimizerKind.Sgd"/>.</summary>
    public OptimizerKind Optimizer { get; set; } = OptimizerKind.Sgd;

    /// <summary>Initial learning rate. Default 20 (SGD, PTB recipe); use about 2e-3 with Adam.</summary>
    public double LearningRate { get; set; } = 20.0;

    /// <summary>
    /// Divide the learning rate by this when the validation loss does not improve on the best so far
    /// (1 = never decay). Default 4 (PTB recipe).
    /// </summary>
    public double LearningRateDecay { get; set; } = 4.0;

    /// <summary>
    /// Clip the global gradient L2 norm to this (0 = no clipping). Default 0.25 (PTB recipe). The norm is exact for any finite
    /// gradient (one too large for a float32 norm is measured in float64), so an exploding but finite gradient is scaled
    /// down; only a NaN or infinite gradient stops training with <see cref="TrainingDivergedException"/>.
    /// </summary>
    public double GradientClipNorm { get; set; } = 0.25;

    /// <summary>L2 weight decay. Default 0.</summary>
    public double WeightDecay { get; set; }

    /// <summary>
    /// Stop when the validation loss has not improved for this many epochs (0 = never stop early); the best
    /// epoch's weights are kept either way. Default 0.
    /// </summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>Cap on optimizer steps per epoch (0 = the whole training set). Default 0.</summary>
    public int MaxStepsPerEpoch { get; set; }

    /// <summary>
    /// With recurrent batch normalization (<see cref="RecurrentNormalization.BatchPerStep"/> or
    /// <see cref="RecurrentNormalization.BatchShared"/>): after each epoch, before its validation, re-estimate the running
    /// statistics over this many of the epoch's training batches (at most the epoch's steps) with the epoch's final weights,
    /// without gradients, with dropout off and every quantizer's evaluation rule; each batch folds in with the
    /// normalization's momentum, as in training. The running averages gathered during the epoch trail weights that kept
    /// moving, so validation, the epoch kept and the saved model would otherwise read statistics of earlier weights. The
    /// weights train the same either way; the validation losses, and through them the learning-rate decay and the epoch
    /// kept, can differ. Costs that many forward passes per epoch. 0 (default) keeps the running averages as trained;
    /// ignored without batch normalization.
    /// </summary>
    public int BatchNormRecalibrationSteps { get; set; }

    /// <summary>
    /// Language models: before each training window, set each stream's carried hidden and cell state to zero with this
    /// probability (one draw per stream and window, from the run's seeded random source). Truncated BPTT otherwise starts
    /// from the zero state only at the first window of each epoch, so nothing trains the model to read a first token from
    /// it; yet <see cref="QuantizedLanguageModel.Generate"/>, evaluation of a short text and the packed model all start
    /// there, and a model can learn a state that a few first tokens send it into and never leave (docs/reproduction.md,
    /// "zero-state traps"). Must be in [0, 1). Default 0 (state carried through the epoch, the PTB recipe); ignored by
    /// sequence classifiers, whose sequences always start from zero.
    /// </summary>
    public double StateResetProbability { get; set; }

    /// <summary>
    /// Keep float shadow weights (BinaryConnect; default true). False applies the quantizer to the weights
    /// themselves after every step, so only quantized values persist (Li et al. 2017's setting, where
    /// stochastic rounding is what lets small updates survive). Uniform weight quantizers must then have a fixed step
    /// (<see cref="QuantizerOptions.FixedStep"/>, e.g. <c>uniform4-sr-fixed</c>), Li et al.'s fixed grid; training
    /// refuses a step re-derived from max |w| after every update.
    /// </summary>
    public bool KeepFloatShadowWeights { get; set; } = true;

    /// <summary>
    /// Seed of every random source (initialization, dropout, stochastic quantizers). Default 1. The same seed gives the same
    /// model bit for bit only at the same intra-op thread count (<c>OMP_NUM_THREADS</c>, <c>torch.set_num_threads</c>): the
    /// count sets how sums are split, so float rounding differs, and a high learning rate amplifies that like a change of
    /// seed.
    /// </summary>
    public int Seed { get; set; } = 1;

    /// <summary>"cpu" (default) or "cuda" / "cuda:N" where the app references a CUDA libtorch.</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>
    /// Folder for a checkpoint written after every epoch; training started with the same folder resumes
    /// from it and ends with the same result as an uninterrupted run at the same intra-op thread count (see <see cref="Seed"/>).
    /// Null (default) writes none.
    /// </summary>
    public string? CheckpointDirectory { get; set; }

    /// <summary>Report progress every this many steps (the end of each epoch is always reported). Default 50.</summary>
    public int ProgressInterval { get; set; } = 50;

    /// <summary>
    /// KURE kurtosis regularization (Shkolnik et al. 2020) added to the loss every step, making the trained weights
    /// robust to post-training quantization at other bit widths and step sizes. Null (default) = off.
    /// </summary>
    public KureOptions? Kure { get; set; }

    /// <summary>Copies these options.</summary>
    public TrainingOptions Clone() => (TrainingOptions)MemberwiseClone();
}
