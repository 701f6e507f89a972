namespace Microsoft.ML.Quantized;

/// <summary>Creates quantizers by options or by name; the one place that maps names to implementations.</summary>
internal static class QuantizerRegistry
{
    /// <summary>The registry name of a configuration (round-trips through <see cref="Parse"/>).</summary>
    public static string NameOf(QuantizerOptions options) => throw new NotImplementedException();

    /// <summary>Parses a registry name back into options; throws <see cref="ArgumentException"/> naming the bad part.</summary>
    public static QuantizerOptions Parse(string name) => throw new NotImplementedException();

    /// <summary>Checks options and throws <see cref="ArgumentException"/> naming the option, the value and the fix.</summary>
    public static void Validate(QuantizerOptions options, string optionName) => throw new NotImplementedException();

    public static void ValidateActivation(QuantizerOptions options, string optionName) => throw new NotImplementedException();

    /// <summary>Creates a new quantizer module for one tensor.</summary>
    public static Quantizer Create(QuantizerOptions options) => options.Kind switch
    {
        QuantizerKind.None => new IdentityQuantizer(),
        _ => throw new NotImplementedException(),
    };
}
