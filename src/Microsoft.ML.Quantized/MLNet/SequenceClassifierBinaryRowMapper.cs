using Microsoft.ML.Data;
using Microsoft.ML.Internal.Utilities;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The bound mapper of <see cref="SequenceClassifierBinaryModelParameters"/>: from the features column to ML.NET's
/// binary classification score columns, <c>Score</c> and <c>Probability</c> (with their standard annotations), one
/// forward pass per row shared by both; ML.NET's <c>BinaryClassifierScorer</c> adds <c>PredictedLabel</c>.
/// </summary>
internal sealed class SequenceClassifierBinaryRowMapper : ISchemaBoundRowMapper
{
    private readonly SequenceClassifierBinaryModelParameters _parent;
    private readonly DataViewSchema.Column _feature;

    public SequenceClassifierBinaryRowMapper(SequenceClassifierBinaryModelParameters parent, RoleMappedSchema schema, DataViewSchema.Column feature)
    {
        _parent = parent;
        _feature = feature;
        InputRoleMappedSchema = schema;
        OutputSchema = ScoreSchemaFactory.CreateBinaryClassificationSchema();
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
        var getters = new Delegate[2];
        if (active[0] || active[1])
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
