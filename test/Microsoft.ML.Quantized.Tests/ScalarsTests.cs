using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// TorchSharp 0.107's Scalar-taking tensor methods do not keep their Scalar alive across the native call, so an
/// implicit temporary (<c>x * 2.0</c>, <c>x.clamp(-1.0, 1.0)</c>) can be finalized mid-call by a concurrent GC:
/// "Unknown scalar type" or silently wrong values. The library passes only Scalars that outlive the call
/// (<see cref="Scalars"/>, or <c>using</c> locals); this test runs its hot paths against a collecting thread.
/// </summary>
[TestClass]
public sealed class ScalarsTests
{
    /// <summary>Passes over the hot paths while the collector runs (a count, not a time, so a loaded machine runs them all).</summary>
    private const int Iterations = 25;

    [TestMethod]
    public void QuantizersCellsAndKureSurviveConcurrentGarbageCollection()
    {
        manual_seed(11);
        using var tensors = NewDisposeScope();
        var weight = randn(8, 12);
        var input = weight.clone().requires_grad_(true);
        var quantizers = new[]
        {
            new QuantizerOptions { Kind = QuantizerKind.BinaryConnect },
            new QuantizerOptions { Kind = QuantizerKind.StochasticBinary },
            new QuantizerOptions { Kind = QuantizerKind.BinaryWeightNet, PerRowScale = true, StepSizeMultiplier = 0.9 },
            new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet, StepSizeMultiplier = 1.1 },
            new QuantizerOptions { Kind = QuantizerKind.ThresholdTernary, PerRowScale = true, StepSizeMultiplier = 0.8 },
            new QuantizerOptions { Kind = QuantizerKind.AlternatingMultiBit, Bits = 2, StepSizeMultiplier = 1.2 },
            new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4, StepSizeMultiplier = 0.9, PowerOfTwoScale = true },
            new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 3, StochasticRounding = true },
            new QuantizerOptions { Kind = QuantizerKind.Uniform, Bits = 4, LearnedScale = true, PerRowScale = true, StepSizeMultiplier = 0.9 },
            new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary },
        }.Select(o => QuantizerFactory.Create(o, weight.shape[0])).ToArray();

        var options = new QuantizedRecurrentOptions
        {
            HiddenSize = 6, Normalization = RecurrentNormalization.Layer, Slopes = ActivationSlopes.All(0.75),
            WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet },
            ActivationQuantizer = new QuantizerOptions { Kind = QuantizerKind.BernoulliTernary },
        };
        using var lstm = new QuantizedLstmCell("lstm", 5, options);
        using var gru = new QuantizedGruCell("gru", 5, options.Clone());
        using var weightNormed = new QuantizedGruCell("gru_wn", 5, new QuantizedRecurrentOptions
        {
            HiddenSize = 6, Normalization = RecurrentNormalization.Weight,
            WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.BinaryWeightNet },
        });
        var x = randn(2, 3, 5);
        var h0 = zeros(3, 6);
        var kure = new KurtosisRegularizer(new KureOptions { Lambda = 0.5 }, new[] { weight, lstm.WeightIh, lstm.WeightHh });

        // Deterministic outputs (evaluation mode) computed before the collector starts: freed-and-reused Scalar memory
        // would show up as different values, not only as exceptions.
        foreach (var q in quantizers) q.eval();
        var expected = quantizers.Select(q => q.forward(input).detach()).ToArray();
        var expectedKure = kure.Loss().detach();

        var stop = 0;
        var collector = new Thread(() =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }) { IsBackground = true };
        collector.Start();
        try
        {
            for (int iterations = 0; iterations < Iterations; iterations++)
            {
                using var scope = NewDisposeScope();
                for (int i = 0; i < quantizers.Length; i++)
                {
                    quantizers[i].eval();
                    Assert.IsTrue(quantizers[i].forward(input).equal(expected[i]).all().item<bool>(), $"{quantizers[i].RegistryName} changed under GC (iteration {iterations})");
                    quantizers[i].train();
                    quantizers[i].forward(input);
                }
                Assert.IsTrue(kure.Loss().equal(expectedKure).all().item<bool>(), $"KURE loss changed under GC (iteration {iterations})");
                lstm.Forward(x, h0, zeros(3, 6));
                gru.Forward(x, h0, null);
                weightNormed.Forward(x, h0, null);
            }
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            collector.Join();
            foreach (var q in quantizers) q.Dispose();
        }
    }
}
