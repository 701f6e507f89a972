using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Optimizers;

/// <summary>
/// TorchSharp's plain SGD with a step whose Scalars outlive the native calls that read them (TorchSharp 0.107's own step
/// passes the learning rate and weight decay as implicit Scalar temporaries that a concurrent garbage collection can
/// finalize mid-call; see <see cref="Quantized.Scalars"/>). The same operations in the same order as TorchSharp's step,
/// so the same bits, with SGD's state and state-dictionary format (named SGD because that format begins with the
/// optimizer's type name, so checkpoints written with TorchSharp's SGD load into it and the other way round). Covers what
/// <see cref="Quantized.TrainingOptions"/> sets: learning rate and weight decay; momentum, Nesterov and maximization are
/// refused.
/// </summary>
internal sealed class SGD : TorchSharp.Modules.SGD
{
    public SGD(IEnumerable<TorchSharp.Modules.Parameter> parameters, double learningRate, double weightDecay)
        : base(parameters, learningRate, weight_decay: weightDecay)
    {
    }

    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        if (options.momentum is not (null or 0.0) || options.nesterov == true || options.maximize == true)
            throw new NotSupportedException("The library's SGD step does not implement momentum, Nesterov or maximization.");
        double weightDecay = options.weight_decay!.Value;
        using var decay = weightDecay.ToScalar();
        using var descent = (0.0 - options.LearningRate!.Value).ToScalar();
        foreach (var parameter in group.Parameters)
        {
            var gradient = parameter.grad;
            if (gradient is null) continue;
            if (weightDecay != 0.0) gradient = gradient.add(parameter, decay);
            parameter.add_(gradient, descent);
        }
    }, closure);
}
