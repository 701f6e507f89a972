using Microsoft.ML.Data;
using Microsoft.ML.Internal.Utilities;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The bound mapper of <see cref="SequenceClassifierModelParameters"/>: from the features column to ML.NET's score
/// columns with their standard annotations. Binary: <c>Score</c> (log-odds) and <c>Probability</c>, one forward pass
/// per row shared by both (ML.NET's <c>BinaryClassifierScorer</c> adds <c>PredictedLabel</c>). Multiclass: <c>Score</c>,
/// the class probabilities (ML.NET's <c>MulticlassClassificationScorer</c> adds <c>PredictedLabel</c>). Errors in a
/// row's features name the column, the row and the value.
/// </summary>
internal sealed class SequenceClassifierRowMapper : ISchemaBoundRowMapper
{
    private readonly SequenceClassifierModelParameters _parent;
    private readonly DataViewSchema.Column _feature;
    private readonly bool _binary;

    public SequenceClassifierRowMapper(SequenceClassifierModelParameters parent, RoleMappedSchema schema, DataViewSchema.Column feature, bool binary)
    {
        _parent = parent;
        _feature = feature;
        _binary = binary;
        InputRoleMappedSchema = schema;
        OutputSchema = binary
            ? ScoreSchemaFactory.CreateBinaryClassificationSchema()
            : ScoreSchemaFactory.Create(new VectorDataViewType(NumberDataViewType.Single, parent.ClassCount), AnnotationUtils.Const.ScoreColumnKind.MulticlassClassification);
    }

    public RoleMappedSchema InputRoleMappedSchema { get; }

    public DataViewSchema InputSchema => InputRoleMappedSchema.Schema;

    public DataViewSchema OutputSchema { get; }

    public ISchemaBindableMapper Bindable => _parent;

    public IEnumerable<KeyValuePair<RoleMappedSchema.ColumnRole, string>> GetInputColumnRoles()
    {
        yield return RoleMappedSchema.ColumnRole.Feature.Bind(_feature.Name);
    }

    IEnumerable<DataViewSchema.Column> ISchemaBoundRowMapper.GetDependenciesForNewColumns(IEnumerable<DataViewSchema.Column> dependingColumns) =>
        dependingColumns.Any() ? [_feature] : [];

    DataViewRow ISchemaBoundRowMapper.GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        var active = Utils.BuildArray(OutputSchema.Count, activeColumns);
        var getters = new Delegate[OutputSchema.Count];
        if (!_binary)
        {
            if (active[0])
            {
                var rowScorer = _parent.CreateRowScorer(input, _feature);
                long position = -1;
                float[] p = [];
                getters[0] = (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    if (position != input.Position)
                    {
                        p = rowScorer();
                        position = input.Position;
                    }
                    var editor = VBufferEditor.Create(ref dst, p.Length);
                    p.CopyTo(editor.Values);
                    dst = editor.Commit();
                });
            }
        }
        else if (active[0] || active[1])
        {
            var scorer = _parent.CreateRowScorer(input, _feature);
            long cached = -1;
            float score = 0, probability = 0;
            void Ensure()
            {
                if (cached == input.Position) return;
                (score, probability) = SequenceClassifierBinaryModelParameters.ScoreAndProbability(scorer());
                cached = input.Position;
            }
            if (active[0]) getters[0] = (ValueGetter<float>)((ref float dst) => { Ensure(); dst = score; });
            if (active[1]) getters[1] = (ValueGetter<float>)((ref float dst) => { Ensure(); dst = probability; });
        }
        return new SimpleRow(OutputSchema, input, getters);
    }
}
