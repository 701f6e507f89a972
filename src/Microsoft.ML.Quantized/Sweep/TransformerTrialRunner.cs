namespace Microsoft.ML.Quantized.Sweep;

/// <summary>
/// A trial runner made by an ML.NET trainer or estimator (<c>CreateTrialRunner(training, validation)</c> of the sequence
/// classifier trainers and of the <c>QuantizedLstm</c>/<c>QuantizedGru</c> language-model estimators). It trains each
/// trial on the columns it read, with the checks of <c>Fit</c>, and <see cref="CreateTransformer"/> turns a trial's saved
/// model into the transformer <c>Fit</c> returns (same type, token key map, unknown-token handling, class prior and
/// columns), which goes after the same tokenizer and key mapping in a pipeline and saves and loads with
/// <c>mlContext.Model</c> like a fitted one.
/// </summary>
/// <typeparam name="TTransformer">
/// What <c>Fit</c> returns: <c>BinaryPredictionTransformer&lt;SequenceClassifierBinaryModelParameters&gt;</c>,
/// <c>MulticlassPredictionTransformer&lt;SequenceClassifierMulticlassModelParameters&gt;</c> or
/// <see cref="QuantizedRecurrentLanguageModelTransformer"/>.
/// </typeparam>
/// <example>
/// <code>
/// var runner = mlContext.BinaryClassification.Trainers.QuantizedGru(options).CreateTrialRunner(train, valid);
/// var result = await mlContext.Quantized().CreateExperiment()
///     .SetTrialRunner(runner).SetObjective(SweepObjective.MaximizeAuc).SetMaxModelToExplore(20).RunAsync();
/// var best = runner.CreateTransformer(result.Best!);
/// mlContext.Model.Save(featurizer.Append(best), rawData.Schema, "best.zip");
/// </code>
/// </example>
public sealed class TransformerTrialRunner<TTransformer> : ISweepTrialRunner
    where TTransformer : ITransformer
{
    private readonly ISweepTrialRunner _inner;
    private readonly Func<Stream, TTransformer> _create;

    /// <param name="inner">Trains the trials (over token ids or frames read from the data).</param>
    /// <param name="create">The transformer of a trial's saved model; throws <see cref="ArgumentException"/> for a model this runner did not train.</param>
    internal TransformerTrialRunner(ISweepTrialRunner inner, Func<Stream, TTransformer> create)
    {
        _inner = inner;
        _create = create;
    }

    /// <inheritdoc />
    public TrialReport Run(TrialContext context, CancellationToken cancellationToken) => _inner.Run(context, cancellationToken);

    /// <summary>
    /// The fitted transformer of <paramref name="trial"/>'s saved model (usually <see cref="SweepResult.Best"/>, a
    /// <see cref="SweepResult.ParetoFront"/> trial or <see cref="SweepResult.BestUnderBytes"/>), read with
    /// <see cref="TrialResult.OpenModel"/>. Each call loads a new copy, which the caller owns (dispose it, or its model
    /// parameters, when done). The trial must come from a sweep run with this runner (or one made by the same trainer
    /// or estimator on the same data).
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The trial has no saved model (it failed or was stopped; or it was neither best nor on the Pareto front of a sweep
    /// that ran in a temporary folder, which keeps only those: call <see cref="QuantizationExperiment.SetCheckpointDirectory"/>
    /// to keep every trial's model), or its model does not fit this runner's data (another vocabulary, key map, input kind
    /// or number of classes).
    /// </exception>
    public TTransformer CreateTransformer(TrialResult trial)
    {
        ArgumentNullException.ThrowIfNull(trial);
        using var stream = trial.OpenModel() ?? throw new ArgumentException(
            $"Trial #{trial.Id} ({trial.Status}{(trial.Error is null ? "" : ": " + trial.Error)}) has no saved model. Only trials that trained to an epoch budget have one, " +
            "and a sweep without a state file or checkpoint folder keeps only the models of its Pareto front (the best one included) when it deletes its temporary folder: " +
            "call SetCheckpointDirectory to keep every trial's model.", nameof(trial));
        return _create(stream);
    }
}
