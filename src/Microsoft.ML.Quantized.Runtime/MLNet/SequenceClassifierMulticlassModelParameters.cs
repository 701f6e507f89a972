using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Quantized;
using Microsoft.ML.Runtime;

[assembly: LoadableClass(typeof(SequenceClassifierMulticlassModelParameters), null, typeof(SignatureLoadModel),
    SequenceClassifierMulticlassModelParameters.UserName, SequenceClassifierMulticlassModelParameters.LoaderSignature)]

namespace Microsoft.ML.Quantized;

/// <summary>
/// Model parameters of the multiclass quantized sequence classifiers: the score is the vector of the network's
/// softmax class probabilities (class i is key i + 1 of the label column). ML.NET's multiclass scorer adds
/// <c>Score</c> and <c>PredictedLabel</c> (the most probable class as a key of the label's key type).
/// </summary>
public sealed class SequenceClassifierMulticlassModelParameters : SequenceClassifierModelParameters, IPredictorProducing<VBuffer<float>>, IValueMapper
{
    internal const string UserName = "Quantized Sequence Multiclass Classifier";
    internal const string LoaderSignature = "QuantSeqMultiClassifier";
    private readonly VectorDataViewType _outputType;

    internal SequenceClassifierMulticlassModelParameters(IHostEnvironment env, SequenceClassifierParts parts, TokenKeyMap? keys, float[] classPrior, string featureColumnName, bool keepTrainingWeights)
        : base(env, nameof(SequenceClassifierMulticlassModelParameters), parts, keys, classPrior, featureColumnName, keepTrainingWeights, binary: false)
    {
        _outputType = new VectorDataViewType(NumberDataViewType.Single, parts.ClassCount);
    }

    internal override SequenceClassifierMulticlassModelParameters WithParts(SequenceClassifierParts parts) =>
        new(Host, parts, Keys, ClassPrior, FeatureColumnName, KeepTrainingWeights);

    PredictionKind IPredictor.PredictionKind => PredictionKind.MulticlassClassification;

    DataViewType IValueMapper.InputType => InputType;

    DataViewType IValueMapper.OutputType => _outputType;

    ValueMapper<TIn, TOut> IValueMapper.GetMapper<TIn, TOut>()
    {
        Host.Check(typeof(TOut) == typeof(VBuffer<float>), "The score of a multiclass classifier is a float vector.");
        var scorer = GetRowScorer<TIn>();
        ValueMapper<TIn, VBuffer<float>> map = (in TIn src, ref VBuffer<float> dst) =>
        {
            var p = scorer(src);
            var editor = VBufferEditor.Create(ref dst, p.Length);
            p.CopyTo(editor.Values);
            dst = editor.Commit();
        };
        return (ValueMapper<TIn, TOut>)(Delegate)map;
    }

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "QSEQMCLS",
        verWrittenCur: FormatVersion,
        verReadableCur: FormatVersion,
        verWeCanReadBack: FirstFormatVersion,
        loaderSignature: LoaderSignature,
        loaderAssemblyName: typeof(SequenceClassifierMulticlassModelParameters).Assembly.FullName,
        loaderSignatureAlt: null);

    private protected override VersionInfo GetVersionInfoCore() => GetVersionInfo();

    // Factory method for SignatureLoadModel.
    private static SequenceClassifierMulticlassModelParameters Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        Contracts.CheckValue(env, nameof(env));
        var host = env.Register(nameof(SequenceClassifierMulticlassModelParameters));
        host.CheckValue(ctx, nameof(ctx));
        ComponentVersion.CheckAtModel(host, ctx, GetVersionInfo(), UserName);
        var (parts, keys, prior, feature, keep) = LoadCore(host, ctx, UserName);
        return new SequenceClassifierMulticlassModelParameters(env, parts, keys, prior, feature, keep);
    }
}
