namespace Microsoft.ML.Quantized;

/// <summary>What a <c>QuantizedSequenceClassifier</c> reads.</summary>
public enum SequenceClassifierInputKind
{
    /// <summary>Token ids (<c>int[]</c>), embedded before the recurrent stack.</summary>
    Tokens,

    /// <summary>Float values (<c>float[]</c>) read as consecutive frames of <see cref="SequenceClassifierOptions.FrameSize"/> values.</summary>
    Frames,
}
