using System.Globalization;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The lambda search of KURE fine-tuning (<see cref="KureFineTuneOptions.LambdaCandidates"/>): one fine-tuned copy per
/// lambda, each scored by a loss of its post-training-quantized copy on validation data; the copy with the lowest loss
/// is kept and the others are disposed. With one lambda it just fine-tunes.
/// </summary>
internal static class KureLambdaSearch
{
    /// <summary>
    /// Fine-tunes with each of <paramref name="lambdas"/> (<paramref name="fineTune"/>) and returns the model whose
    /// <paramref name="score"/> (a loss: lower is better) is lowest; logs every candidate on <paramref name="ch"/>.
    /// </summary>
    public static TModel Choose<TModel>(IChannel ch, IReadOnlyList<double> lambdas, string scoreName, Func<double, TModel> fineTune, Func<TModel, double> score)
        where TModel : class, IDisposable
    {
        if (lambdas.Count == 1) return fineTune(lambdas[0]);
        TModel? best = null;
        double bestScore = double.PositiveInfinity, bestLambda = double.NaN;
        try
        {
            foreach (double lambda in lambdas)
            {
                var model = fineTune(lambda);
                double value;
                try
                {
                    value = score(model);
                }
                catch
                {
                    model.Dispose();
                    throw;
                }
                ch.Info(string.Create(CultureInfo.InvariantCulture, $"KURE lambda {lambda}: {scoreName} {value:F4}."));
                if (value < bestScore || best is null)
                {
                    best?.Dispose();
                    (best, bestScore, bestLambda) = (model, value, lambda);
                }
                else model.Dispose();
            }
        }
        catch
        {
            best?.Dispose();
            throw;
        }
        ch.Info(string.Create(CultureInfo.InvariantCulture, $"KURE lambda search: kept lambda {bestLambda} ({scoreName} {bestScore:F4})."));
        return best!;
    }
}
