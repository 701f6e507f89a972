namespace Microsoft.ML.Quantized;

/// <summary>A sequence classifier's answer for one sequence.</summary>
/// <param name="PredictedClass">The most probable class (the lowest index on a tie).</param>
/// <param name="Probabilities">Softmax probability of every class; for binary models <c>Probabilities[1]</c> is P(positive).</param>
public sealed record SequenceClassifierPrediction(int PredictedClass, float[] Probabilities);
