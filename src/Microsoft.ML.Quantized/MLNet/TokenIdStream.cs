using Microsoft.ML.Runtime;

namespace Microsoft.ML.Quantized;

/// <summary>
/// Reads a token-key column into one token-id stream through a fitted key map, as language models train and evaluate on
/// it: <c>&lt;eos&gt;</c> before every row and at the end. Used for validation data, KURE fine-tuning data and evaluation.
/// </summary>
internal static class TokenIdStream
{
    /// <summary>
    /// The token ids of column <paramref name="columnName"/> of <paramref name="data"/>. Keys missing from
    /// <paramref name="keys"/> become <c>&lt;unk&gt;</c>, are dropped or are rejected, as the map's
    /// <see cref="TokenKeyMap.UnknownTokens"/> says; rows left empty are dropped unless <paramref name="keys"/> is
    /// strict (or, for a model of the first format, <paramref name="allowEmptyRows"/> says otherwise). Errors name the
    /// column, the row and <paramref name="role"/> (e.g. "validation data"); ML.NET schema errors name the column when
    /// it is missing or of another type.
    /// </summary>
    public static int[] Read(IExceptionContext ectx, IDataView data, string columnName, TokenKeyMap keys, string role, bool? allowEmptyRows = null)
    {
        ectx.CheckValue(data, nameof(data));
        var column = TokenKeyColumn.Check(ectx, data.Schema, columnName, keys.KeyCount);
        var ids = new List<int>();
        int tokens = 0;
        using (var cursor = data.GetRowCursor(new[] { column }))
        {
            var reader = TokenKeyColumn.CreateReader(cursor, column);
            while (cursor.MoveNext())
            {
                var row = reader.Read();
                int start = ids.Count;
                ids.Add(keys.EndOfSequenceId);
                int appended = keys.AppendRow(ectx, row, ids, columnName, cursor.Position, role);
                if (appended == 0)
                {
                    if (!(allowEmptyRows ?? keys.UnknownTokens != UnknownTokenHandling.Strict))
                        throw ectx.Except(QuantizedRecurrentLanguageModelTransformer.EmptyRowMessage(columnName, cursor.Position, row.Length) + $" ({role})");
                    ids.RemoveAt(start);
                }
                tokens += appended;
            }
        }
        if (tokens == 0) throw ectx.Except($"Column '{columnName}' of the {role} holds no tokens.");
        ids.Add(keys.EndOfSequenceId);
        return ids.ToArray();
    }

    /// <summary>The token ids a fitted language-model transformer reads from <paramref name="data"/>, with its own key map and settings.</summary>
    public static int[] Read(IExceptionContext ectx, QuantizedRecurrentLanguageModelTransformer model, IDataView data, string role) =>
        Read(ectx, data, model.InputColumnName, model.Keys, role, model.AllowsEmptyRows);
}
