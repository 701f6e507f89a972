using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The normalization of a term of every step across one sequence in a sequence function (the recurrent term <c>h W_hh^T</c>,
/// the input term <c>x W_ih^T</c>): standardizes each step's [rows, features] product into a [steps, rows, features] buffer with <see cref="StandardizationMath"/> (per-group layer
/// normalization; batch normalization with batch statistics in training, then folded into the running averages as the
/// autograd loop folds them, or with each step's running set in evaluation), and takes the derivative back step by step.
/// </summary>
internal sealed class SequenceStandardizer<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly SequenceNormalization normalization;
    private readonly int rows;
    private readonly int features;
    private readonly T epsilon;
    private readonly Tensor? means;
    private readonly Tensor? variances;
    private readonly Tensor? runningMeans;

    /// <summary>For a forward pass: allocates the buffers of <paramref name="steps"/> steps (<paramref name="normalization"/> must normalize).</summary>
    public SequenceStandardizer(SequenceNormalization normalization, int steps, int rows, int features, ScalarType dtype, Device device)
    {
        this.normalization = normalization;
        this.rows = rows;
        this.features = features;
        epsilon = T.CreateChecked(normalization.LayerNorm?.Epsilon ?? normalization.BatchNorm!.Epsilon);
        Standardized = empty(steps, rows, features, dtype: dtype, device: device);
        if (normalization.LayerNorm is not null)
        {
            InverseDeviations = empty(steps, rows * normalization.LayerNorm.Groups, dtype: dtype, device: device);
        }
        else if (normalization.Training)
        {
            InverseDeviations = empty(steps, features, dtype: dtype, device: device);
            means = empty(steps, features, dtype: dtype, device: device);
            variances = empty(steps, features, dtype: dtype, device: device);
        }
        else
        {
            using var shift = normalization.BatchNorm!.Epsilon.ToScalar();
            InverseDeviations = normalization.BatchNorm.RunningVar.add(shift, Scalars.One).rsqrt_();
            runningMeans = normalization.BatchNorm.RunningMean.contiguous();
        }
    }

    /// <summary>For a backward pass: the buffers a forward pass saved.</summary>
    public SequenceStandardizer(SequenceNormalization normalization, Tensor standardized, Tensor inverseDeviations)
    {
        this.normalization = normalization;
        rows = (int)standardized.shape[1];
        features = (int)standardized.shape[2];
        Standardized = standardized;
        InverseDeviations = inverseDeviations;
    }

    /// <summary>The standardized products [steps, rows, features] (before gain and bias).</summary>
    public Tensor Standardized { get; }

    /// <summary>
    /// The inverse deviations: per row and group [steps, rows * groups] (layer), per step and feature [steps, features] (batch,
    /// training) or per running set [sets, features] (batch, evaluation).
    /// </summary>
    public Tensor InverseDeviations { get; }

    /// <summary>Step <paramref name="step"/>'s part of <see cref="Standardized"/>: where its product goes before <see cref="Forward(int)"/>.</summary>
    public Span<T> Step(int step)
    {
        int size = rows * features;
        return TensorSpans.Of<T>(Standardized).Slice(step * size, size);
    }

    /// <summary>True when each row is standardized on its own (layer normalization), so <see cref="Forward(int, int, int)"/> takes part of the rows.</summary>
    public bool IsRowWise => normalization.LayerNorm is not null;

    /// <summary>Standardizes step <paramref name="step"/>'s product (written to <see cref="Step"/>) in place and returns it.</summary>
    public Span<T> Forward(int step) => Forward(step, 0, rows);

    /// <summary>
    /// Standardizes rows <paramref name="firstRow"/> .. + <paramref name="rowCount"/> of step <paramref name="step"/>'s product
    /// in place and returns them; only all rows unless <see cref="IsRowWise"/> (batch statistics span the rows).
    /// </summary>
    public Span<T> Forward(int step, int firstRow, int rowCount)
    {
        if (!IsRowWise && (firstRow != 0 || rowCount != rows))
            throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, "Batch normalization standardizes all rows of a step at once.");
        var standardized = Step(step);
        var inverse = TensorSpans.Of<T>(InverseDeviations);
        if (normalization.LayerNorm is not null)
        {
            int groups = normalization.LayerNorm.Groups;
            var part = standardized.Slice(firstRow * features, rowCount * features);
            StandardizationMath.StandardizeGroups(part, rowCount, groups, epsilon, inverse.Slice((step * rows + firstRow) * groups, rowCount * groups));
            return part;
        }
        else if (means is not null)
        {
            StandardizationMath.StandardizeBatch(standardized, rows, epsilon, TensorSpans.Of<T>(means).Slice(step * features, features),
                TensorSpans.Of<T>(variances!).Slice(step * features, features), inverse.Slice(step * features, features));
        }
        else
        {
            int set = Math.Min(step, normalization.BatchNorm!.Steps - 1);
            StandardizationMath.StandardizeWith(standardized, rows, TensorSpans.Of<T>(runningMeans!).Slice(set * features, features),
                inverse.Slice(set * features, features));
        }
        return standardized;
    }

    /// <summary>After the forward pass's last step: folds the batch statistics into the running averages (batch norm in training).</summary>
    public void UpdateRunningStatistics()
    {
        if (means is not null) normalization.BatchNorm!.UpdateRunningStatistics(means, variances!, rows, firstStep: 0);
    }

    /// <summary>
    /// In place: <paramref name="gradient"/> of step <paramref name="step"/>'s standardized values becomes the gradient of its
    /// product. <paramref name="scratch"/> holds 2 * features values.
    /// </summary>
    public void Backward(Span<T> gradient, int step, Span<T> scratch) => Backward(gradient, step, 0, rows, scratch);

    /// <summary>
    /// <see cref="Backward(Span{T}, int, Span{T})"/> for rows <paramref name="firstRow"/> .. + <paramref name="rowCount"/>
    /// only, <paramref name="gradient"/> holding those rows; only all rows unless <see cref="IsRowWise"/>.
    /// </summary>
    public void Backward(Span<T> gradient, int step, int firstRow, int rowCount, Span<T> scratch)
    {
        if (!IsRowWise && (firstRow != 0 || rowCount != rows))
            throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, "Batch normalization's derivative spans all rows of a step.");
        int size = rows * features;
        var standardized = TensorSpans.Of<T>(Standardized).Slice(step * size, size);
        var inverse = TensorSpans.Of<T>(InverseDeviations);
        if (normalization.LayerNorm is not null)
        {
            int groups = normalization.LayerNorm.Groups;
            StandardizationMath.StandardizeGroupsBackward<T>(gradient, standardized.Slice(firstRow * features, rowCount * features),
                inverse.Slice((step * rows + firstRow) * groups, rowCount * groups), rowCount, groups);
        }
        else if (normalization.TracksBatchStatistics)
        {
            StandardizationMath.StandardizeBatchBackward<T>(gradient, standardized, inverse.Slice(step * features, features), rows,
                scratch[..features], scratch.Slice(features, features));
        }
        else
        {
            int set = Math.Min(step, normalization.BatchNorm!.Steps - 1);
            StandardizationMath.StandardizeWithBackward<T>(gradient, rows, inverse.Slice(set * features, features));
        }
    }
}
