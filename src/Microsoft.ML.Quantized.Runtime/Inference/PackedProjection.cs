namespace Microsoft.ML.Quantized;

/// <summary>
/// One product term of a recurrent cell in evaluation form: <c>norm(W v) + b</c> with <c>W</c> packed
/// (<see cref="PackedMatrix"/>; weight normalization already folded into its per-row scales), <c>norm</c> a layer or batch
/// normalization or none, and <c>b</c> the cell's bias of this term (<c>b_ih</c> or <c>b_hh</c>). Immutable.
/// </summary>
/// <remarks>Fields: the matrix, the normalization (<see cref="PackedNormalization.Write"/>), the bias (float array of Rows values).</remarks>
internal sealed class PackedProjection
{
    private readonly float[] _bias;

    /// <summary>Creates the projection (the bias is copied).</summary>
    public PackedProjection(PackedMatrix weight, PackedNormalization? normalization, ReadOnlySpan<float> bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (bias.Length != weight.Rows)
            throw new ArgumentException($"The bias has {bias.Length} values; the weight has {weight.Rows} rows.", nameof(bias));
        if (normalization is not null && normalization.Features != weight.Rows)
            throw new ArgumentException($"The normalization has {normalization.Features} features; the weight has {weight.Rows} rows.", nameof(normalization));
        Weight = weight;
        Normalization = normalization;
        _bias = bias.ToArray();
    }

    /// <summary>The packed weight [outputs, inputs].</summary>
    public PackedMatrix Weight { get; }

    /// <summary>Layer or batch normalization of <c>W v</c>; null for none.</summary>
    public PackedNormalization? Normalization { get; }

    /// <summary>The bias added after the normalization.</summary>
    public ReadOnlySpan<float> Bias => _bias;

    /// <summary>Outputs (gate pre-activations).</summary>
    public int Outputs => Weight.Rows;

    /// <summary>Inputs.</summary>
    public int Inputs => Weight.Columns;

    /// <summary>Computes <c>norm(W v) + b</c> of time step <paramref name="step"/> into <paramref name="output"/>.</summary>
    public void Apply(ReadOnlySpan<float> input, int step, Span<float> output, ScoringKernels kernels)
    {
        kernels.MultiplyVector(Weight, input, output);
        Normalization?.Apply(output, step, kernels);
        kernels.Add(output, _bias);
    }

    internal void Write(PackedModelWriter writer)
    {
        writer.WriteMatrix(Weight);
        PackedNormalization.Write(writer, Normalization);
        writer.WriteSingles(_bias);
    }

    internal static PackedProjection Read(PackedModelReader reader, string field, int outputs, int inputs)
    {
        var weight = reader.ReadMatrix($"{field} weight", outputs, inputs);
        var normalization = PackedNormalization.Read(reader, $"{field} normalization", outputs);
        return new PackedProjection(weight, normalization, reader.ReadSingles($"{field} bias", outputs));
    }
}
