using System.Numerics;
using System.Numerics.Tensors;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The standardizations of a recurrent cell's recurrent term and their derivatives, on spans over contiguous row-major
/// [rows, features] memory (the sequence functions run them on the tensors' own buffers): layer normalization per group of a
/// row, batch normalization per feature over the rows (batch or given statistics). Without gain and bias, which the cells
/// apply themselves. In place means the destination is the same span as a source, which <see cref="TensorPrimitives"/> allows.
/// </summary>
internal static class StandardizationMath
{
    /// <summary>
    /// Layer normalization without gain and bias, in place: each of the <paramref name="groups"/> equal parts of each of the
    /// <paramref name="rows"/> rows of <paramref name="values"/> becomes <c>(v - mean) / sqrt(var + eps)</c> (biased
    /// variance); the inverse deviations go to <paramref name="inverseDeviations"/> [rows * groups].
    /// </summary>
    public static void StandardizeGroups<T>(Span<T> values, int rows, int groups, T epsilon, Span<T> inverseDeviations)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int size = values.Length / (rows * groups);
        T count = T.CreateChecked(size);
        for (int k = 0; k < rows * groups; k++)
        {
            var part = values.Slice(k * size, size);
            TensorPrimitives.Subtract(part, TensorPrimitives.Sum<T>(part) / count, part);
            T inverse = T.One / T.Sqrt(TensorPrimitives.SumOfSquares<T>(part) / count + epsilon);
            TensorPrimitives.Multiply(part, inverse, part);
            inverseDeviations[k] = inverse;
        }
    }

    /// <summary>
    /// The derivative of <see cref="StandardizeGroups"/>, in place: <paramref name="gradient"/> (of the standardized values
    /// <paramref name="standardized"/>) becomes the gradient of its input, per group <c>(dy - mean(dy) - y mean(dy y)) / sigma</c>
    /// (Ba et al. 2016's normalization differentiated by hand).
    /// </summary>
    public static void StandardizeGroupsBackward<T>(Span<T> gradient, ReadOnlySpan<T> standardized, ReadOnlySpan<T> inverseDeviations, int rows, int groups)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int size = gradient.Length / (rows * groups);
        T count = T.CreateChecked(size);
        for (int k = 0; k < rows * groups; k++)
        {
            var dy = gradient.Slice(k * size, size);
            var y = standardized.Slice(k * size, size);
            T projection = TensorPrimitives.Dot(dy, y) / count;
            TensorPrimitives.Subtract(dy, TensorPrimitives.Sum<T>(dy) / count, dy);
            TensorPrimitives.MultiplyAdd(y, -projection, dy, dy);
            TensorPrimitives.Multiply(dy, inverseDeviations[k], dy);
        }
    }

    /// <summary>
    /// Batch normalization with batch statistics, without gain and bias, in place: each feature (column) of the
    /// <paramref name="rows"/> rows of <paramref name="values"/> becomes <c>(v - mean) / sqrt(var + eps)</c> over the rows
    /// (biased variance). Writes the means, biased variances and inverse deviations [features].
    /// </summary>
    public static void StandardizeBatch<T>(Span<T> values, int rows, T epsilon, Span<T> mean, Span<T> variance, Span<T> inverseDeviation)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = values.Length / rows;
        T count = T.CreateChecked(rows);
        mean.Clear();
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(mean, values.Slice(r * features, features), mean);
        TensorPrimitives.Divide(mean, count, mean);
        variance.Clear();
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * features, features);
            TensorPrimitives.Subtract(row, mean, row);
            TensorPrimitives.MultiplyAdd(row, row, variance, variance);
        }
        TensorPrimitives.Divide(variance, count, variance);
        TensorPrimitives.Add(variance, epsilon, inverseDeviation);
        TensorPrimitives.Sqrt(inverseDeviation, inverseDeviation);
        TensorPrimitives.Divide(T.One, inverseDeviation, inverseDeviation);
        for (int r = 0; r < rows; r++) TensorPrimitives.Multiply(values.Slice(r * features, features), inverseDeviation, values.Slice(r * features, features));
    }

    /// <summary>
    /// Batch normalization with given (running) statistics, in place: each row of <paramref name="values"/> becomes
    /// <c>(v - mean) * inverseDeviation</c>.
    /// </summary>
    public static void StandardizeWith<T>(Span<T> values, int rows, ReadOnlySpan<T> mean, ReadOnlySpan<T> inverseDeviation)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = values.Length / rows;
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * features, features);
            TensorPrimitives.Subtract(row, mean, row);
            TensorPrimitives.Multiply(row, inverseDeviation, row);
        }
    }

    /// <summary>
    /// The derivative of <see cref="StandardizeBatch"/>, in place: <paramref name="gradient"/> becomes, per feature,
    /// <c>(dy - mean_b(dy) - y mean_b(dy y)) / sigma</c> (means over the rows; Ioffe and Szegedy 2015 differentiated by hand).
    /// <paramref name="meanGradient"/> and <paramref name="meanProjection"/> are scratch [features].
    /// </summary>
    public static void StandardizeBatchBackward<T>(Span<T> gradient, ReadOnlySpan<T> standardized, ReadOnlySpan<T> inverseDeviation, int rows,
        Span<T> meanGradient, Span<T> meanProjection)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = gradient.Length / rows;
        T count = T.CreateChecked(rows);
        meanGradient.Clear();
        meanProjection.Clear();
        for (int r = 0; r < rows; r++)
        {
            var dy = gradient.Slice(r * features, features);
            TensorPrimitives.Add(meanGradient, dy, meanGradient);
            TensorPrimitives.MultiplyAdd(dy, standardized.Slice(r * features, features), meanProjection, meanProjection);
        }
        TensorPrimitives.Divide(meanGradient, count, meanGradient);
        TensorPrimitives.Divide(meanProjection, -count, meanProjection);
        for (int r = 0; r < rows; r++)
        {
            var dy = gradient.Slice(r * features, features);
            TensorPrimitives.Subtract(dy, meanGradient, dy);
            TensorPrimitives.MultiplyAdd(standardized.Slice(r * features, features), meanProjection, dy, dy);
            TensorPrimitives.Multiply(dy, inverseDeviation, dy);
        }
    }

    /// <summary>
    /// The derivative of <see cref="StandardizeWith"/>, in place: each row of <paramref name="gradient"/> times
    /// <paramref name="inverseDeviation"/>.
    /// </summary>
    public static void StandardizeWithBackward<T>(Span<T> gradient, int rows, ReadOnlySpan<T> inverseDeviation)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int features = gradient.Length / rows;
        for (int r = 0; r < rows; r++) TensorPrimitives.Multiply(gradient.Slice(r * features, features), inverseDeviation, gradient.Slice(r * features, features));
    }
}
