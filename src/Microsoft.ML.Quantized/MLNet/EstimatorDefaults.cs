namespace Microsoft.ML.Quantized;

/// <summary>
/// The network every ML.NET entry point starts from, whether it is called with arguments (<c>QuantizedLstm(...,
/// hiddenSize: 128)</c>) or with an options object: 128 hidden units in one layer, ternary weights (TWN, Li et al. 2016)
/// with weight normalization (Hou et al. 2019), which trains quantized weights well and keeps the fastest recurrent kernel
/// (libtorch's fused one; a GRU's hand-written loop on a CPU with 512-bit vectors).
/// </summary>
internal static class EstimatorDefaults
{
    public const int HiddenSize = 128;

    public const int Layers = 1;

    public const QuantizerKind WeightQuantizer = QuantizerKind.TernaryWeightNet;

    /// <summary>A new recurrent configuration with these defaults.</summary>
    public static QuantizedRecurrentOptions Recurrent() => With(new QuantizedRecurrentOptions(), HiddenSize, Layers, WeightQuantizer, bits: 0);

    /// <summary>
    /// Sets the settings the catalog's argument overloads take on <paramref name="recurrent"/>: weight normalization for
    /// quantized weights, none for float ones.
    /// </summary>
    public static QuantizedRecurrentOptions With(QuantizedRecurrentOptions recurrent, int hiddenSize, int layers, QuantizerKind weightQuantizer, int bits)
    {
        recurrent.HiddenSize = hiddenSize;
        recurrent.Layers = layers;
        recurrent.WeightQuantizer = new QuantizerOptions { Kind = weightQuantizer, Bits = bits };
        recurrent.Normalization = weightQuantizer == QuantizerKind.None ? RecurrentNormalization.None : RecurrentNormalization.Weight;
        return recurrent;
    }
}
