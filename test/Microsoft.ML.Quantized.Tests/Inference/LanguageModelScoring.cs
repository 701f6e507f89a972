using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// The torch reference of what the managed engine computes for a row: the final hidden state and perplexity of one
/// token sequence through the libtorch evaluation forward (what the ML.NET transformer scored with before the engine).
/// The network must be in evaluation mode.
/// </summary>
internal static class LanguageModelScoring
{
    /// <summary>
    /// Reads <paramref name="ids"/> (the row's tokens after a leading <c>&lt;eos&gt;</c>) from a zero state. Writes the
    /// last layer's final hidden state to <paramref name="hidden"/>; returns the summed cross-entropy (nats) of
    /// predicting ids[1..] from their prefixes, and how many tokens that is.
    /// </summary>
    public static (double CrossEntropySum, int Count) Score(LanguageModelNetwork network, Device device, long[] ids, Span<float> hidden)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var input = torch.tensor(ids, new long[] { ids.Length, 1 }, device: device);
        var (logits, state) = network.Forward(input, null);
        var last = state.H[state.H.shape[0] - 1, 0].to(torch.CPU).contiguous();
        last.data<float>().CopyTo(hidden);
        int n = ids.Length - 1;
        if (n == 0) return (0, 0);
        using var sum = nn.functional.cross_entropy(logits.narrow(0, 0, n).reshape(n, -1), input.narrow(0, 1, n).reshape(n), reduction: nn.Reduction.Sum);
        return (sum.to(torch.CPU).item<float>(), n);
    }
}
