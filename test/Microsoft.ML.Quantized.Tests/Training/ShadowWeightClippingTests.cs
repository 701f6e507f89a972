using TorchSharp;
using static Microsoft.ML.Quantized.Tests.Quantizers.QuantizerTestUtil;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// BinaryConnect's training rule (Courbariaux et al. 2015, Algorithm 1): the gradient with respect to the binary weight
/// reaches the shadow weight, and the shadow weight is clipped to [-1, 1] after each update, so a weight pushed past 1
/// moves again when the gradient turns.
/// </summary>
[TestClass]
public sealed class ShadowWeightClippingTests
{
    [TestMethod]
    [DataRow("bc")]
    [DataRow("sbc")]
    [DataRow("bwn")]
    public void AWeightPushedPastOneIsClippedAndMovesBack(string quantizer)
    {
        // Loss at step t: sum(c_t * q(w)); SGD with learning rate 1, no gradient clipping, so w <- clip(w - c_t, -1, 1).
        // w0 = (0.9, -0.2, 0.5)
        // step 1, c = (-2, 3, 0.25): w - c = (2.9, -3.2, 0.25) -> clipped (1, -1, 0.25)
        // step 2, c = (0.5, -0.5, 0.5): w - c = (0.5, -0.5, -0.25), no clipping; the third weight changed sign.
        // (With the old rule, a gradient masked where |w| > 1 and no clip, the first two would stay at 2.9 and -3.2.)
        var task = new LinearLossTask(quantizer, new[] { 0.9f, -0.2f, 0.5f }, new[] { new[] { -2f, 3f, 0.25f }, new[] { 0.5f, -0.5f, 0.5f } });
        var training = new TrainingOptions { Epochs = 1, LearningRate = 1, GradientClipNorm = 0 };
        TrainingLoop.Run(task, training, "test", null, CancellationToken.None);
        AreClose(new[] { 0.5f, -0.5f, -0.25f }, task.Weight, 1e-6);
    }

    [TestMethod]
    public void OtherQuantizersLeaveTheShadowWeightUnclipped()
    {
        // TWN keeps the papers' unconstrained shadow weights: w0 - c = 0.9 + 2 = 2.9 stays.
        var task = new LinearLossTask("twn", new[] { 0.9f, -0.2f, 0.5f }, new[] { new[] { -2f, 3f, 0.25f } });
        TrainingLoop.Run(task, new TrainingOptions { Epochs = 1, LearningRate = 1, GradientClipNorm = 0 }, "test", null, CancellationToken.None);
        AreClose(new[] { 2.9f, -3.2f, 0.25f }, task.Weight, 1e-6);
    }

    /// <summary>One weight row w [1, 3] through a quantizer; the loss of step t is sum(c_t * q(w)), so its gradient is c_t.</summary>
    private sealed class LinearLossTask : TrainingTask
    {
        private readonly torch.nn.Module _network;
        private readonly TorchSharp.Modules.Parameter _weight;
        private readonly Quantizer _quantizer;
        private readonly float[][] _coefficients;

        public LinearLossTask(string quantizer, float[] initial, float[][] coefficients)
        {
            _weight = new TorchSharp.Modules.Parameter(torch.tensor(initial).reshape(1, initial.Length));
            _network = torch.nn.ParameterDict(("w", _weight));
            _quantizer = QuantizerFactory.Create(quantizer);
            _coefficients = coefficients;
        }

        public torch.Tensor Weight => _weight.detach();

        public override torch.nn.Module Network => _network;

        public override int StepsPerEpoch => _coefficients.Length;

        public override IEnumerable<(torch.Tensor Weight, Quantizer Quantizer)> QuantizedWeights => new[] { ((torch.Tensor)_weight, _quantizer) };

        public override void BeginEpoch(int epoch) { }

        public override (torch.Tensor Loss, long Units) TrainingLoss(int step)
        {
            _quantizer.train();
            var c = torch.tensor(_coefficients[step]).reshape(1, -1);
            return ((_quantizer.forward(_weight) * c).sum(), 1);
        }

        public override double? ValidationLoss(CancellationToken cancellationToken) => null;
    }
}
