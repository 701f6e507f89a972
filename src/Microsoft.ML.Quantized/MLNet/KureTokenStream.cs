using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Reads the token column of a fitted language-model transformer into one token-id stream, as its estimator trained
/// on it: <c>&lt;eos&gt;</c> before every row and at the end, keys mapped by the transformer's key map, unknown keys and
/// empty rows handled by its <see cref="QuantizedRecurrentLanguageModelTransformer.SkipUnknownKeys"/> and
/// <see cref="QuantizedRecurrentLanguageModelTransformer.AllowEmptySequences"/>.
/// </summary>
internal static class KureTokenStream
{
    /// <summary>The token ids of <paramref name="data"/>; ML.NET schema errors name the column when it is missing or of another type.</summary>
    public static int[] Read(IExceptionContext ectx, QuantizedRecurrentLanguageModelTransformer model, IDataView data, string role)
    {
        ectx.CheckValue(data, nameof(data));
        var keys = model.Keys;
        string name = model.InputColumnName;
        var column = TokenKeyColumn.Check(ectx, data.Schema, name, keys.KeyCount);
        var ids = new List<long>();
        int tokens = 0;
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            var reader = TokenKeyColumn.CreateReader(cursor, column);
            while (cursor.MoveNext())
            {
                var row = reader.Read();
                int start = ids.Count;
                ids.Add(keys.EndOfSequenceId);
                int n = keys.AppendRow(ectx, row, ids, name, cursor.Position, model.SkipUnknownKeys);
                if (n == 0)
                {
                    if (!model.AllowEmptySequences)
                        throw ectx.Except(QuantizedRecurrentLanguageModelTransformer.EmptyRowMessage(name, cursor.Position, row.Length) + $" ({role})");
                    ids.RemoveAt(start);
                }
                tokens += n;
            }
        }
        if (tokens == 0) throw ectx.Except($"Column '{name}' of the {role} holds no tokens.");
        ids.Add(keys.EndOfSequenceId);
        return ids.Select(i => (int)i).ToArray();
    }
}
