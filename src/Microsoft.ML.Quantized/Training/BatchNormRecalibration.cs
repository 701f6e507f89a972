using static TorchSharp.torch;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Re-estimates recurrent batch normalization's running statistics with the weights held fixed: the network in evaluation
/// mode (dropout off, every quantizer's evaluation rule) except its recurrent cells, which normalize with batch statistics
/// and fold them into their running averages with the normalization's momentum, as in training.
/// </summary>
internal static class BatchNormRecalibration
{
    /// <summary>
    /// Calls <paramref name="forward"/> with batch indices 0 .. <paramref name="batches"/> - 1 in that mode, without
    /// gradients and each call in its own dispose scope; does not call it where no recurrent cell has batch normalization.
    /// Leaves <paramref name="network"/> in evaluation mode either way.
    /// </summary>
    public static void Run(nn.Module network, int batches, Action<int> forward)
    {
        network.eval();
        var cells = network.modules().OfType<QuantizedRecurrentCell>().Where(c => c.modules().OfType<RecurrentBatchNorm>().Any()).ToList();
        if (cells.Count == 0) return;
        using var noGrad = no_grad();
        try
        {
            foreach (var cell in cells)
            {
                cell.train();
                foreach (var quantizer in cell.modules().OfType<Quantizer>()) quantizer.eval();
            }
            for (int i = 0; i < batches; i++)
            {
                using var scope = NewDisposeScope();
                forward(i);
            }
        }
        finally
        {
            network.eval();
        }
    }
}
