using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The features column of the quantized sequence classifiers: either a vector of <see cref="uint"/> keys (token
/// sequences, e.g. <c>TokenizeIntoWords</c> then <c>MapValueToKey</c>, read through the model's <see cref="TokenKeyMap"/>)
/// or a vector of <see cref="float"/> read as consecutive frames of a frame size (one frame per step).
/// Checks the type and turns one row's value into the core classifier's input with ML.NET-style errors.
/// </summary>
internal static class SequenceClassifierFeatureColumn
{
    public const string ExpectedType = "Vector<Key<UInt32>> (token keys, e.g. from TokenizeIntoWords then MapValueToKey) or Vector<Single> (float frames)";

    /// <summary>The input kind of <paramref name="type"/>, or null when it is neither a key vector nor a float vector.</summary>
    public static SequenceClassifierInputKind? KindOf(DataViewType type) => type switch
    {
        VectorDataViewType { ItemType: KeyDataViewType key } when key.RawType == typeof(uint) && key.Count > 0 => SequenceClassifierInputKind.Tokens,
        VectorDataViewType { ItemType: NumberDataViewType n } when n == NumberDataViewType.Single => SequenceClassifierInputKind.Frames,
        _ => null,
    };

    /// <summary>The features column of <paramref name="schema"/>, checked; ML.NET schema errors otherwise.</summary>
    public static DataViewSchema.Column Check(IExceptionContext ectx, DataViewSchema schema, string name, out SequenceClassifierInputKind kind)
    {
        var column = schema.GetColumnOrNull(name) ?? throw ectx.ExceptSchemaMismatch(nameof(schema), "feature", name);
        kind = KindOf(column.Type) ?? throw ectx.ExceptSchemaMismatch(nameof(schema), "feature", name, ExpectedType, column.Type.ToString());
        return column;
    }

    /// <summary>The estimator-side check on a <see cref="SchemaShape"/>.</summary>
    public static void Check(IExceptionContext ectx, SchemaShape schema, string name)
    {
        if (!schema.TryFindColumn(name, out var column)) throw ectx.ExceptSchemaMismatch(nameof(schema), "feature", name);
        bool isVector = column.Kind is SchemaShape.Column.VectorKind.VariableVector or SchemaShape.Column.VectorKind.Vector;
        bool ok = isVector && (column.IsKey ? column.ItemType.RawType == typeof(uint) : column.ItemType == NumberDataViewType.Single);
        if (!ok) throw ectx.ExceptSchemaMismatch(nameof(schema), "feature", name, ExpectedType, column.GetTypeString());
    }

    /// <summary>
    /// Token ids of one row's keys through <paramref name="keys"/>: keys it does not know become <c>&lt;unk&gt;</c>, are
    /// dropped, or are an error, as its <see cref="TokenKeyMap.UnknownTokens"/> says. The result may be empty unless the
    /// map is strict, which rejects an empty row. Errors name the column, the row and the value.
    /// </summary>
    public static int[] Tokens(IExceptionContext ectx, in VBuffer<uint> keys, TokenKeyMap map, string column, long? row)
    {
        var values = new ulong[keys.Length];
        int i = 0;
        foreach (var key in keys.DenseValues()) values[i++] = key;
        var ids = new List<int>(values.Length);
        map.AppendRow(ectx, values, ids, column, row);
        if (ids.Count == 0 && map.UnknownTokens == UnknownTokenHandling.Strict)
            throw ectx.Except($"{Where(column, row)}: the token sequence is empty. This model was trained with UnknownTokens = Strict, which needs at least one token per row; " +
                              "filter such rows out, or train with UnknownTokens = MapToUnknown (the default) or Skip.");
        return ids.ToArray();
    }

    /// <summary>One row's float values, checked to be finite, non-empty and a whole number of frames.</summary>
    public static float[] Frames(IExceptionContext ectx, in VBuffer<float> values, int frameSize, string column, long? row)
    {
        if (values.Length == 0) throw ectx.Except($"{Where(column, row)}: the float sequence is empty. A sequence classifier needs at least one frame per row.");
        if (values.Length % frameSize != 0)
            throw ectx.Except($"{Where(column, row)}: the vector has {values.Length} values, not a multiple of the frame size {frameSize}; set FrameSize to a divisor of the length.");
        var dense = new float[values.Length];
        values.CopyTo(dense);
        for (int i = 0; i < dense.Length; i++)
        {
            if (!float.IsFinite(dense[i]))
                throw ectx.Except($"{Where(column, row)}, value {i} (step {i / frameSize}): {dense[i]}. Sequence classifier inputs must be finite; replace missing values first (e.g. ReplaceMissingValues).");
        }
        return dense;
    }

    private static string Where(string column, long? row) => row is long r ? $"Column '{column}', row {r}" : $"Column '{column}' (row being scored)";
}
