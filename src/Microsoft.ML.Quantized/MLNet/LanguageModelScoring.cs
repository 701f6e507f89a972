using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Per-row work of the ML.NET language-model transformer on a trained <see cref="QuantizedLanguageModel"/>'s
/// network: the final hidden state and perplexity of one token sequence, and sampling. Callers hold the model's
/// lock; the network must be in evaluation mode.
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

    /// <summary>
    /// Continues <paramref name="context"/> (starting with <c>&lt;eos&gt;</c>) with up to <paramref name="length"/>
    /// sampled ids, stopping early when <paramref name="stopId"/> is sampled (not returned).
    /// </summary>
    public static List<int> Generate(LanguageModelNetwork network, Device device, long[] context, int length, double temperature, int seed, int stopId)
    {
        var produced = new List<int>(length);
        if (length == 0) return produced;
        using var noGrad = torch.no_grad();
        using var generator = new Generator((ulong)seed, device);
        RecurrentState? state = null;
        try
        {
            long[] input = context;
            while (produced.Count < length)
            {
                using var scope = torch.NewDisposeScope();
                var tokens = torch.tensor(input, new long[] { input.Length, 1 }, device: device);
                var (logits, next) = network.Forward(tokens, state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
                int id = Sample(logits[-1, 0], temperature, generator);
                if (id == stopId) break;
                produced.Add(id);
                input = [id];
            }
        }
        finally
        {
            state?.Dispose();
        }
        return produced;
    }

    private static int Sample(Tensor logits, double temperature, Generator generator)
    {
        if (temperature == 0) return (int)logits.argmax().item<long>();
        using var t = temperature.ToScalar();
        using var probabilities = nn.functional.softmax(logits.to(torch.float64).div(t), 0);
        using var choice = torch.multinomial(probabilities, 1, generator: generator);
        return (int)choice.item<long>();
    }
}
