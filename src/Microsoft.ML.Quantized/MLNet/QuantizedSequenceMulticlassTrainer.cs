using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Trains a quantized recurrent (LSTM or GRU) multiclass sequence classifier on a key label (e.g. from
/// <c>MapValueToKey</c>; its key count is the number of classes) and a features column of token keys (variable
/// length, embedded) or float frames. The fitted transformer adds ML.NET's multiclass columns, <c>Score</c> (the
/// class probabilities) and <c>PredictedLabel</c> (a key of the label's key type, mapped back through its key
/// values), so <c>mlContext.MulticlassClassification.Evaluate</c> works unchanged. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.QuantizedLstm(...)</c> or <c>QuantizedGru(...)</c>.
/// </summary>
/// <remarks>
/// Fit copies the sequences into memory. Training logs to the MLContext's log. Save the fitted model with
/// <c>mlContext.Model.Save</c>; the trained network travels inside the ML.NET model file. The transformer's
/// <c>Model</c> holds torch tensors: dispose it when done (or let the garbage collector).
/// </remarks>
public sealed class QuantizedSequenceMulticlassTrainer
    : QuantizedSequenceTrainerBase<MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters>, SequenceClassifierMulticlassModelParameters>
{
    private const string ExpectedLabel = "Key<UInt32> with at least 2 key values (e.g. from MapValueToKey)";

    internal QuantizedSequenceMulticlassTrainer(IHostEnvironment env, SequenceClassifierTrainerOptions? options, RecurrentCellKind cell)
        : base(env, cell == RecurrentCellKind.Lstm ? "QuantizedLstmMulticlass" : "QuantizedGruMulticlass", options, cell)
    {
    }

    private protected override DataViewSchema.Column CheckLabel(DataViewSchema schema, out int classes)
    {
        var column = schema.GetColumnOrNull(LabelColumnName) ?? throw Host.ExceptSchemaMismatch(nameof(schema), "label", LabelColumnName);
        if (column.Type is not KeyDataViewType key || key.RawType != typeof(uint) || key.Count < 2 || key.Count > int.MaxValue)
            throw Host.ExceptSchemaMismatch(nameof(schema), "label", LabelColumnName, ExpectedLabel, column.Type.ToString());
        classes = (int)key.Count;
        return column;
    }

    private protected override void CheckLabel(SchemaShape.Column label)
    {
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || !label.IsKey || label.ItemType.RawType != typeof(uint))
            throw Host.ExceptSchemaMismatch("inputSchema", "label", LabelColumnName, ExpectedLabel, label.GetTypeString());
    }

    private protected override Func<int> MakeLabelReader(DataViewRow row, DataViewSchema.Column label, int classes)
    {
        var getter = row.GetGetter<uint>(label);
        uint value = 0;
        return () =>
        {
            getter(ref value);
            if (value == 0)
                throw Host.Except($"Column '{LabelColumnName}', row {row.Position}: key 0, a missing label (MapValueToKey gives it to values it was not fitted on). " +
                                  "Every training row needs a label; filter such rows out.");
            if (value > (uint)classes)
                throw Host.Except($"Column '{LabelColumnName}', row {row.Position}: key {value}, outside the label's key range 1..{classes}.");
            return (int)value - 1;
        };
    }

    private protected override SchemaShape.Column[] GetOutputColumns(SchemaShape.Column label)
    {
        var predictedAnnotations = new SchemaShape(label.Annotations.Where(a => a.Name == AnnotationUtils.Kinds.KeyValues)
            .Concat(AnnotationUtils.GetTrainerOutputAnnotation()));
        return
        [
            new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false,
                new SchemaShape(AnnotationUtils.AnnotationsForMulticlassScoreColumn(label))),
            new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.UInt32, true,
                predictedAnnotations),
        ];
    }

    private protected override SequenceClassifierMulticlassModelParameters CreateModel(SequenceClassifierParts parts, TokenKeyMap? keys, float[] classPrior) =>
        new(Env, parts, keys, classPrior, FeatureColumnName, Options.KeepTrainingWeights);

    private protected override MulticlassPredictionTransformer<SequenceClassifierMulticlassModelParameters> MakeTransformer(
        SequenceClassifierMulticlassModelParameters model, DataViewSchema trainSchema) =>
        new(Host, model, trainSchema, FeatureColumnName, LabelColumnName);
}
