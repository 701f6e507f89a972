using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Layers of quantized LSTM or GRU cells with dropout between layers. Runs the fused libtorch kernel when
/// only weights are quantized and there is no in-cell normalization, else the cell loop.
/// </summary>
internal sealed class QuantizedRecurrentStack : nn.Module
{
    public QuantizedRecurrentStack(string name, int inputSize, QuantizedRecurrentOptions options) : base(name)
        => throw new NotImplementedException();

    /// <summary>True when forward runs the fused libtorch kernel.</summary>
    public bool UsesFusedKernel => throw new NotImplementedException();

    /// <summary>
    /// input [time, batch, inputSize]; state null = zeros. Returns output [time, batch, hidden] (after the
    /// output dropout) and the final state.
    /// </summary>
    public (Tensor Output, RecurrentState State) Forward(Tensor input, RecurrentState? state)
        => throw new NotImplementedException();

    /// <summary>Every quantized weight matrix with its name and quantizer, for packing, size and KURE.</summary>
    public IEnumerable<(string Name, Tensor Weight, Quantizer Quantizer)> QuantizedWeights()
        => throw new NotImplementedException();
}
