using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The fused libtorch LSTM and GRU kernels (<c>torch.lstm</c>, <c>torch.gru</c>) called with explicit weight
/// tensors through a TorchScript compiled once per process. Passing the fake-quantized weights
/// (<c>w + (q(w) - w).detach()</c> from the quantizer) keeps the fused kernel for weight-only quantization while
/// autograd still reaches the float shadow weights.
/// </summary>
/// <remarks>
/// TorchSharp's <c>CompilationUnit.invoke</c> passes a <c>Tensor[]</c> argument as a TorchScript
/// <c>List[Tensor]</c> and returns a tuple of tensors as a <see cref="ValueTuple"/> of <see cref="Tensor"/>
/// (checked with TorchSharp 0.107). One layer per call, no dropout, time-major, batch-first off.
/// </remarks>
internal static class FusedRecurrentKernel
{
    private const string Script = @"
def lstm(x: Tensor, h0: Tensor, c0: Tensor, params: List[Tensor], train: bool) -> Tuple[Tensor, Tensor, Tensor]:
    return torch.lstm(x, [h0, c0], params, True, 1, 0.0, train, False, False)

def gru(x: Tensor, h0: Tensor, params: List[Tensor], train: bool) -> Tuple[Tensor, Tensor]:
    return torch.gru(x, h0, params, True, 1, 0.0, train, False, False)
";

    private static readonly Lazy<jit.CompilationUnit> Unit = new(() => jit.compile(Script), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// One LSTM layer over <paramref name="input"/> [time, batch, in] from state (h0, c0) [batch, hidden]
    /// with PyTorch-layout weights (gate order i, f, g, o). Returns output [time, batch, hidden] and the final
    /// h and c [batch, hidden]. The results belong to the current dispose scope.
    /// </summary>
    /// <remarks>
    /// Runs with gradient mode on even under <c>no_grad</c>: with gradient mode off, libtorch 2.10's CPU LSTM takes its
    /// oneDNN inference path, which returned outputs 0.19 off the LSTM equations on an AVX-512 AMD EPYC (GRU is not
    /// affected). When no argument requires a gradient (evaluation), no graph is recorded, so this costs nothing.
    /// </remarks>
    public static (Tensor Output, Tensor H, Tensor C) Lstm(
        Tensor input, Tensor h0, Tensor c0, Tensor weightIh, Tensor weightHh, Tensor biasIh, Tensor biasHh, bool training)
    {
        using var gradientMode = torch.enable_grad();
        var result = Unit.Value.invoke("lstm", input, h0.unsqueeze(0), c0.unsqueeze(0), new[] { weightIh, weightHh, biasIh, biasHh }, training);
        var (output, h, c) = ((Tensor, Tensor, Tensor))result;
        return (output, h.squeeze(0), c.squeeze(0));
    }

    /// <summary>
    /// One GRU layer over <paramref name="input"/> [time, batch, in] from h0 [batch, hidden] with PyTorch-layout
    /// weights (gate order r, z, n). Returns output [time, batch, hidden] and the final h [batch, hidden].
    /// The results belong to the current dispose scope.
    /// </summary>
    public static (Tensor Output, Tensor H) Gru(
        Tensor input, Tensor h0, Tensor weightIh, Tensor weightHh, Tensor biasIh, Tensor biasHh, bool training)
    {
        var result = Unit.Value.invoke("gru", input, h0.unsqueeze(0), new[] { weightIh, weightHh, biasIh, biasHh }, training);
        var (output, h) = ((Tensor, Tensor))result;
        return (output, h.squeeze(0));
    }
}
