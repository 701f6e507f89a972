using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// KURE's loss term (Shkolnik et al. 2020, eq. 4): <c>Lambda * mean over tensors of (Kurt(W) - Target)^2</c> (with
/// <see cref="KureOptions.PerRow"/>, of the mean over each matrix's rows; with <see cref="KureOptions.Statistic"/>, of
/// another uniformity statistic in place of Kurt) on the
/// float shadow weights (graph attached, so the optimizer sees its gradient). Plug <see cref="Loss"/> into
/// <see cref="TrainingTask.Regularizer"/>; the loop adds it to the task loss every step.
/// </summary>
internal sealed class KurtosisRegularizer
{
    private readonly Tensor[] _weights;
    private readonly Func<Tensor, Tensor> _statistic;
    private readonly Func<Tensor, Tensor> _statisticOfRows;

    /// <summary>Regularizes <paramref name="weights"/> (the tensors themselves, not copies) with <paramref name="options"/>.</summary>
    public KurtosisRegularizer(KureOptions options, IEnumerable<Tensor> weights)
    {
        OptionsValidator.Validate(options);
        ArgumentNullException.ThrowIfNull(weights);
        Options = options.Clone();
        _weights = weights.ToArray();
        (_statistic, _statisticOfRows) = Options.Statistic == UniformityStatistic.Kurtosis
            ? (Kurtosis.Of, Kurtosis.OfRows)
            : ((Func<Tensor, Tensor>)AbsoluteCoefficientOfVariation.Of, (Func<Tensor, Tensor>)AbsoluteCoefficientOfVariation.OfRows);
    }

    /// <summary>The options (a copy).</summary>
    public KureOptions Options { get; }

    /// <summary>The regularized tensors.</summary>
    public IReadOnlyList<Tensor> Weights => _weights;

    /// <summary>
    /// The regularizer of a model's weight matrices (a language model's or a classifier's <c>WeightMatrices()</c>):
    /// those selected by <see cref="KureOptions.Tensors"/> (recurrent <c>layers.*</c>, <c>embedding</c>,
    /// <c>decoder.*</c> / <c>head.*</c>).
    /// </summary>
    public static KurtosisRegularizer For(IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> weightMatrices, KureOptions options)
    {
        ArgumentNullException.ThrowIfNull(weightMatrices);
        OptionsValidator.Validate(options);
        return new KurtosisRegularizer(options, Select(weightMatrices, options.Tensors).Select(m => m.Weight));
    }

    /// <summary>The weight matrices of <paramref name="matrices"/> (named as <see cref="LanguageModelNetwork.WeightMatrices"/> names them) that <paramref name="tensors"/> selects.</summary>
    public static IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> Select(
        IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> matrices, KurtosisTensors tensors)
        => matrices.Where(m => tensors.HasFlag(GroupOf(m.Name)));

    /// <summary>The group a weight matrix belongs to, by name: <c>embedding</c>, <c>decoder.*</c> / <c>head.*</c>, else recurrent.</summary>
    public static KurtosisTensors GroupOf(string name) =>
        name == "embedding" ? KurtosisTensors.Embedding
        : name.StartsWith("decoder", StringComparison.Ordinal) || name.StartsWith("head", StringComparison.Ordinal) ? KurtosisTensors.Decoder
        : KurtosisTensors.Recurrent;

    /// <summary>The term for the current weights: a scalar in the current dispose scope (0 with no tensors or Lambda 0).</summary>
    public Tensor Loss()
    {
        if (_weights.Length == 0 || Options.Lambda == 0)
            return _weights.Length == 0 ? zeros(Array.Empty<long>()) : zeros(Array.Empty<long>(), _weights[0].dtype, _weights[0].device);
        using var scope = NewDisposeScope();
        using var target = Options.Target.ToScalar();
        using var weight = (Options.Lambda / _weights.Length).ToScalar();
        Tensor? sum = null;
        foreach (var w in _weights)
        {
            // A vector, or a one-column matrix (a layer with a single input, e.g. pixel-by-pixel MNIST), is one row.
            var term = Options.PerRow && RowStatistic.HasRows(w)
                ? _statisticOfRows(w).sub(target).pow(Scalars.Two).mean()
                : _statistic(w).sub(target).pow(Scalars.Two);
            sum = sum is null ? term : sum.add(term, Scalars.One);
        }
        return sum!.mul(weight).MoveToOuterDisposeScope();
    }
}
