namespace Microsoft.ML.Quantized;

/// <summary>How <see cref="PackedActivationQuantizer"/> quantizes an activation vector.</summary>
internal enum ActivationQuantization : byte
{
    /// <summary>Float: the vector is left as it is.</summary>
    None = 0,
    /// <summary>HitNet's Bernoulli ternary quantizer in evaluation: <c>sign(x) * 1{|x| &gt; 0.5}</c>.</summary>
    BernoulliTernary = 1,
    /// <summary>Symmetric k-bit uniform: <c>s * round(clamp(x / s, -Qp, Qp))</c>, round half to even.</summary>
    Uniform = 2,
}
