using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Optimizers;

/// <summary>
/// TorchSharp's Adam (Kingma and Ba 2015) with a step whose Scalars outlive the native calls that read them. TorchSharp
/// 0.107's own step passes its hyper-parameters as implicit Scalar temporaries, which a concurrent garbage collection can
/// finalize mid-call ("Unknown scalar type" from <c>Adam.step</c> on long runs; see <see cref="Quantized.Scalars"/>).
/// This step runs the same operations in the same order on the same values, so it trains bit for bit as TorchSharp's
/// does, and it keeps Adam's state, parameter groups and state-dictionary format; it is named Adam because that format
/// begins with the optimizer's type name, so checkpoints written with TorchSharp's Adam load into it and the other way
/// round. Covers what <see cref="Quantized.TrainingOptions"/> sets: learning rate and weight decay, with Adam's default
/// betas (0.9, 0.999) and epsilon (1e-8); AMSGrad and maximization are refused.
/// </summary>
internal sealed class Adam : TorchSharp.Modules.Adam
{
    public Adam(IEnumerable<TorchSharp.Modules.Parameter> parameters, double learningRate, double weightDecay)
        : base(parameters, learningRate, weight_decay: weightDecay)
    {
    }

    /// <inheritdoc/>
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var options = group.Options;
        if (options.amsgrad == true || options.maximize == true)
            throw new NotSupportedException("The library's Adam step does not implement AMSGrad or maximization.");
        double beta1 = options.beta1!.Value, beta2 = options.beta2!.Value, weightDecay = options.weight_decay!.Value;
        double learningRate = options.LearningRate!.Value;
        using var decay = weightDecay.ToScalar();
        using var firstMomentum = beta1.ToScalar();
        using var firstShare = (1.0 - beta1).ToScalar();
        using var secondMomentum = beta2.ToScalar();
        using var secondShare = (1.0 - beta2).ToScalar();
        using var epsilon = options.eps!.Value.ToScalar();
        foreach (var parameter in group.Parameters)
        {
            var gradient = parameter.grad;
            if (gradient is null) continue;
            var state = (State)_state[parameter.Handle];
            state.step++;
            double firstCorrection = 1.0 - Math.Pow(beta1, state.step);
            double secondCorrection = 1.0 - Math.Pow(beta2, state.step);
            if (weightDecay != 0.0) gradient = gradient.add(parameter, decay);
            state.exp_avg.mul_(firstMomentum).add_(gradient, firstShare);
            state.exp_avg_sq.mul_(secondMomentum).addcmul_(gradient, gradient, secondShare);
            using var secondRoot = Math.Sqrt(secondCorrection).ToScalar();
            using var stepSize = (0.0 - learningRate / firstCorrection).ToScalar();
            var denominator = state.exp_avg_sq.sqrt().div(secondRoot).add_(epsilon, Scalars.One);
            parameter.addcdiv_(state.exp_avg, denominator, stepSize);
        }
    }, closure);
}
