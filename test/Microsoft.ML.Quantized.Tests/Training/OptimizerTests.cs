using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// The training loop's Adam and SGD steps keep their Scalars alive (<see cref="ScalarLifetimeAuditTests"/>); they must
/// still be TorchSharp's optimizers to the bit, state files included (type name first, so either loads the other's),
/// so runs and checkpoints from before reproduce.
/// </summary>
[TestClass]
public sealed class OptimizerTests
{
    [TestMethod]
    public void Adam_takes_torchsharps_steps_to_the_bit_and_writes_the_same_state()
    {
        var (ours, theirs, start) = Run(p => new Optimizers.Adam(p, 0.01, 0.001), p => torch.optim.Adam(p, 0.01, weight_decay: 0.001));
        AssertSame(ours, theirs, start);
    }

    [TestMethod]
    public void Sgd_takes_torchsharps_steps_to_the_bit_and_writes_the_same_state()
    {
        var (ours, theirs, start) = Run(p => new Optimizers.SGD(p, 0.5, 0.01), p => torch.optim.SGD(p, 0.5, weight_decay: 0.01));
        AssertSame(ours, theirs, start);
    }

    [TestMethod]
    public void Adams_first_step_moves_each_weight_by_the_rate_against_its_gradient()
    {
        // One step from zero moments: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2, so
        // w1 = w0 - lr g / (|g| + eps), with the gradient g = 2 w0 - c worked out by hand.
        float[] w0 = { 0.5f, -1.25f, 2f, 0.001f }, c = { 0.2f, 0.3f, -4f, 0.002f };
        var after = OneStep(w0, c, w => new Optimizers.Adam(w, 0.1, 0.0));
        for (int i = 0; i < w0.Length; i++)
        {
            double g = 2.0 * w0[i] - c[i];
            Assert.AreEqual(w0[i] - 0.1 * g / (Math.Abs(g) + 1e-8), after[i], 2e-6, $"weight {i}");
        }
    }

    [TestMethod]
    public void Sgds_step_is_the_rate_times_gradient_plus_decay()
    {
        float[] w0 = { 0.5f, -1.25f, 2f }, c = { 0.2f, 0.3f, -4f };
        var after = OneStep(w0, c, w => new Optimizers.SGD(w, 0.25, 0.1));
        for (int i = 0; i < w0.Length; i++)
            Assert.AreEqual(w0[i] - 0.25 * (2.0 * w0[i] - c[i] + 0.1 * w0[i]), after[i], 1e-6, $"weight {i}");
    }

    /// <summary>The weights after one step from <paramref name="w0"/> on the loss sum(w^2) - c.w (gradient 2 w - c).</summary>
    private static float[] OneStep(float[] w0, float[] c, Func<Parameter[], OptimizerHelper> create)
    {
        var w = new Parameter(tensor(w0));
        using (var optimizer = create(new[] { w }))
        using (var scope = NewDisposeScope())
        {
            w.pow(Scalars.Two).sum().sub(w.mul(tensor(c)).sum()).backward();
            optimizer.step();
        }
        var after = w.data<float>().ToArray();
        w.Dispose();
        return after;
    }

    [TestMethod]
    public void Options_the_steps_do_not_implement_are_refused()
    {
        var w = new Parameter(ones(3));
        using var sgd = new Optimizers.SGD(new[] { w }, 0.1, 0.0);
        foreach (var group in sgd.ParamGroups) ((TorchSharp.Modules.SGD.ParamGroup)group).Options.momentum = 0.9;
        using (var scope = NewDisposeScope()) w.sum().backward();
        Assert.ThrowsExactly<NotSupportedException>(() => sgd.step());
        using var adam = new Optimizers.Adam(new[] { w }, 0.1, 0.0);
        foreach (var group in adam.ParamGroups) ((TorchSharp.Modules.Adam.ParamGroup)group).Options.amsgrad = true;
        Assert.ThrowsExactly<NotSupportedException>(() => adam.step());
        w.Dispose();
    }

    /// <summary>
    /// Six steps of each optimizer on identical weights and losses (weights and a bias, a learning-rate change after three
    /// steps as the plateau schedule makes); returns both weight sets and state files and the starting weights.
    /// </summary>
    private static ((float[] Weights, byte[] State) Ours, (float[] Weights, byte[] State) Theirs, float[] Start) Run(
        Func<Parameter[], OptimizerHelper> ours, Func<Parameter[], OptimizerHelper> theirs)
    {
        (float[], byte[]) Train(Func<Parameter[], OptimizerHelper> create)
        {
            manual_seed(3);
            var parameters = new[] { new Parameter(randn(5, 4)), new Parameter(randn(5)) };
            var input = randn(8, 4);
            using var optimizer = create(parameters);
            for (int step = 0; step < 6; step++)
            {
                using var scope = NewDisposeScope();
                if (step == 3) foreach (var group in optimizer.ParamGroups) group.LearningRate /= 4;
                optimizer.zero_grad();
                input.matmul(parameters[0].t()).add(parameters[1], Scalars.One).tanh().pow(Scalars.Two).sum().backward();
                optimizer.step();
            }
            using var state = new MemoryStream();
            using (var writer = new BinaryWriter(state, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
            var weights = parameters.SelectMany(p => p.data<float>().ToArray()).ToArray();
            foreach (var p in parameters) p.Dispose();
            input.Dispose();
            return (weights, state.ToArray());
        }
        manual_seed(3);
        var start = new[] { randn(5, 4), randn(5) }.SelectMany(t => { var v = t.data<float>().ToArray(); t.Dispose(); return v; }).ToArray();
        return (Train(ours), Train(theirs), start);
    }

    private static void AssertSame((float[] Weights, byte[] State) ours, (float[] Weights, byte[] State) theirs, float[] start)
    {
        Assert.AreEqual(start.Length, ours.Weights.Length);
        Assert.IsTrue(ours.Weights.Zip(start).Count(p => p.First != p.Second) == start.Length, "every weight moved");
        CollectionAssert.AreEqual(theirs.Weights, ours.Weights, "weights after six steps");
        CollectionAssert.AreEqual(theirs.State, ours.State, "saved optimizer state");
    }
}
