namespace Microsoft.ML.Quantized;

/// <summary>
/// HitNet's slope-adjustable activations: each gate computes sigma(x / lambda) or tanh(x / lambda).
/// lambda = 1 is the standard function; lambda &lt; 1 makes it steeper, so outputs sit nearer the
/// ternary levels and activation quantization loses less. Valid range (0, 4].
/// </summary>
public sealed class ActivationSlopes
{
    /// <summary>lambda of the input gate sigmoid (LSTM) or the reset gate (GRU). Default 1.</summary>
    public double InputGate { get; set; } = 1.0;
    /// <summary>lambda of the forget gate sigmoid (LSTM) or the update gate (GRU). Default 1.</summary>
    public double ForgetGate { get; set; } = 1.0;
    /// <summary>lambda of the output gate sigmoid (LSTM only). Default 1.</summary>
    public double OutputGate { get; set; } = 1.0;
    /// <summary>lambda of the candidate tanh (LSTM cell input, GRU new state). Default 1.</summary>
    public double Candidate { get; set; } = 1.0;
    /// <summary>lambda of the tanh applied to the LSTM cell state. Default 1.</summary>
    public double CellOutput { get; set; } = 1.0;

    /// <summary>Sets every gate to one slope (HitNet uses a single lambda per model).</summary>
    public static ActivationSlopes All(double lambda) => new()
    {
        InputGate = lambda, ForgetGate = lambda, OutputGate = lambda, Candidate = lambda, CellOutput = lambda,
    };

    /// <summary>True when every slope is 1 (the standard activations).</summary>
    public bool AreStandard => InputGate == 1 && ForgetGate == 1 && OutputGate == 1 && Candidate == 1 && CellOutput == 1;

    /// <summary>Copies these slopes.</summary>
    public ActivationSlopes Clone() => (ActivationSlopes)MemberwiseClone();
}
