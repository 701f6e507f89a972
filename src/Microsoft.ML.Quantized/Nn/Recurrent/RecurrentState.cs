using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Hidden state of a recurrent stack: <see cref="H"/> is [layers, batch, hidden]; <see cref="C"/> is the LSTM
/// cell state of the same shape (null for GRU).
/// </summary>
internal sealed class RecurrentState : IDisposable
{
    public RecurrentState(Tensor h, Tensor? c)
    {
        H = h;
        C = c;
    }

    public Tensor H { get; }

    public Tensor? C { get; }

    /// <summary>A copy cut from the autograd graph, for carrying state across truncated-BPTT windows.</summary>
    public RecurrentState Detach() => new(H.detach(), C?.detach());

    /// <summary>Moves both tensors to the enclosing dispose scope.</summary>
    public RecurrentState MoveToOuterDisposeScope()
    {
        H.MoveToOuterDisposeScope();
        C?.MoveToOuterDisposeScope();
        return this;
    }

    /// <summary>Detaches both tensors from every dispose scope (the caller owns them).</summary>
    public RecurrentState DetachFromDisposeScope()
    {
        H.DetachFromDisposeScope();
        C?.DetachFromDisposeScope();
        return this;
    }

    public void Dispose()
    {
        H.Dispose();
        C?.Dispose();
    }
}
