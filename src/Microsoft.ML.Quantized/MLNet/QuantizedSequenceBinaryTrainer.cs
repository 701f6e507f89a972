using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Trains a quantized recurrent (LSTM or GRU) binary sequence classifier on a <see cref="bool"/> label and a features
/// column of token keys (variable length, embedded) or float frames. The fitted transformer adds ML.NET's binary
/// classification columns, <c>Score</c> (log-odds), <c>Probability</c> and <c>PredictedLabel</c> (<see cref="bool"/>),
/// so <c>mlContext.BinaryClassification.Evaluate</c> works unchanged. Create it with
/// <c>mlContext.BinaryClassification.Trainers.QuantizedLstm(...)</c> or <c>QuantizedGru(...)</c>.
/// </summary>
/// <remarks>
/// Fit copies the sequences into memory. Training logs to the MLContext's log. Save the fitted model with
/// <c>mlContext.Model.Save</c>; the trained network travels inside the ML.NET model file. The transformer's
/// <c>Model</c> holds torch tensors: dispose it when done (or let the garbage collector).
/// </remarks>
public sealed class QuantizedSequenceBinaryTrainer
    : QuantizedSequenceTrainerBase<BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters>, SequenceClassifierBinaryModelParameters>
{
    internal QuantizedSequenceBinaryTrainer(IHostEnvironment env, SequenceClassifierTrainerOptions? options, RecurrentCellKind cell)
        : base(env, cell == RecurrentCellKind.Lstm ? "QuantizedLstmBinary" : "QuantizedGruBinary", options, cell)
    {
    }

    private protected override DataViewSchema.Column CheckLabel(DataViewSchema schema, out int classes)
    {
        var column = schema.GetColumnOrNull(LabelColumnName) ?? throw Host.ExceptSchemaMismatch(nameof(schema), "label", LabelColumnName);
        if (column.Type != BooleanDataViewType.Instance)
            throw Host.ExceptSchemaMismatch(nameof(schema), "label", LabelColumnName, "Boolean", column.Type.ToString());
        classes = 2;
        return column;
    }

    private protected override void CheckLabel(SchemaShape.Column label)
    {
        if (label.Kind != SchemaShape.Column.VectorKind.Scalar || label.IsKey || label.ItemType != BooleanDataViewType.Instance)
            throw Host.ExceptSchemaMismatch("inputSchema", "label", LabelColumnName, "Boolean", label.GetTypeString());
    }

    private protected override Func<int> MakeLabelReader(DataViewRow row, DataViewSchema.Column label, int classes)
    {
        var getter = row.GetGetter<bool>(label);
        bool value = false;
        return () =>
        {
            getter(ref value);
            return value ? 1 : 0;
        };
    }

    private protected override SchemaShape.Column[] GetOutputColumns(SchemaShape.Column label) =>
    [
        new SchemaShape.Column(DefaultColumnNames.Score, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false,
            new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation())),
        new SchemaShape.Column(DefaultColumnNames.Probability, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, false,
            new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation(true))),
        new SchemaShape.Column(DefaultColumnNames.PredictedLabel, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false,
            new SchemaShape(AnnotationUtils.GetTrainerOutputAnnotation())),
    ];

    private protected override SequenceClassifierBinaryModelParameters CreateModel(SequenceClassifierParts parts, TokenKeyMap? keys, float[] classPrior) =>
        new(Env, parts, keys, classPrior, FeatureColumnName, Options.KeepTrainingWeights);

    private protected override BinaryPredictionTransformer<SequenceClassifierBinaryModelParameters> MakeTransformer(
        SequenceClassifierBinaryModelParameters model, DataViewSchema trainSchema) =>
        new(Host, model, trainSchema, FeatureColumnName);
}
