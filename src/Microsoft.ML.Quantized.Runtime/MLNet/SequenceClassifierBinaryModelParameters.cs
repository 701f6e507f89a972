using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Quantized;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(SequenceClassifierBinaryModelParameters), null, typeof(SignatureLoadModel),
    SequenceClassifierBinaryModelParameters.UserName, SequenceClassifierBinaryModelParameters.LoaderSignature)]

namespace Microsoft.ML.Quantized;

/// <summary>
/// Model parameters of the binary quantized sequence classifiers: the score is the log-odds of the positive class
/// (log P(true) - log P(false), so the default threshold 0 is P = 0.5) and the probability is the network's softmax
/// probability of the positive class. ML.NET's binary scorer adds <c>Score</c>, <c>Probability</c> and <c>PredictedLabel</c>.
/// It binds to the schema itself (see <see cref="SequenceClassifierModelParameters"/>) because ML.NET's
/// probability-producing wrapper only reads fixed-size float vectors.
/// </summary>
public sealed class SequenceClassifierBinaryModelParameters : SequenceClassifierModelParameters, IPredictorProducing<float>, IValueMapper
{
    internal const string UserName = "Quantized Sequence Binary Classifier";
    internal const string LoaderSignature = "QuantSeqBinaryClassifier";
    /// <summary>The probability floor of the log-odds score.</summary>
    internal const float MinProbability = 1e-30f;

    internal SequenceClassifierBinaryModelParameters(IHostEnvironment env, SequenceClassifierParts parts, TokenKeyMap? keys, float[] classPrior, string featureColumnName, bool keepTrainingWeights)
        : base(env, nameof(SequenceClassifierBinaryModelParameters), parts, keys, classPrior, featureColumnName, keepTrainingWeights, binary: true)
    {
        if (parts.ClassCount != 2) throw Host.Except($"A binary classifier needs 2 classes; this one has {parts.ClassCount}.");
    }

    internal override SequenceClassifierBinaryModelParameters WithParts(SequenceClassifierParts parts) =>
        new(Host, parts, Keys, ClassPrior, FeatureColumnName, KeepTrainingWeights);

    PredictionKind IPredictor.PredictionKind => PredictionKind.BinaryClassification;

    DataViewType IValueMapper.InputType => InputType;

    DataViewType IValueMapper.OutputType => NumberDataViewType.Single;

    ValueMapper<TIn, TOut> IValueMapper.GetMapper<TIn, TOut>()
    {
        Host.Check(typeof(TOut) == typeof(float), "The score of a binary classifier is a float.");
        var scorer = GetRowScorer<TIn>();
        ValueMapper<TIn, float> map = (in TIn src, ref float score) => score = Score(scorer(src));
        return (ValueMapper<TIn, TOut>)(Delegate)map;
    }

    /// <summary>Score (log-odds of the positive class) and probability of the positive class from class probabilities.</summary>
    internal static (float Score, float Probability) ScoreAndProbability(float[] p) => (Score(p), p[1]);

    private static float Score(float[] p) => MathF.Log(MathF.Max(p[1], MinProbability)) - MathF.Log(MathF.Max(p[0], MinProbability));

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "QSEQBINC",
        verWrittenCur: FormatVersion,
        verReadableCur: FormatVersion,
        verWeCanReadBack: FirstFormatVersion,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(SequenceClassifierBinaryModelParameters).Assembly.FullName,
        loaderSignatureAlt: null);

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    // Factory method for SignatureLoadModel.
    private static SequenceClassifierBinaryModelParameters Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(SequenceClassifierBinaryModelParameters));
        host.CheckValue(ctx, nameof(ctx));
        ComponentVersion.CheckAtModel(host, ctx, GetVersionInfo(), UserName);
        var (parts, keys, prior, feature, keep) = LoadCore(host, ctx, UserName);
        return new SequenceClassifierBinaryModelParameters(env, parts, keys, prior, feature, keep);
    }
}
