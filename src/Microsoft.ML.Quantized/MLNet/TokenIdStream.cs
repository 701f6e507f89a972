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
    /// <paramref name="keys"/> are dropped when <paramref name="skipUnknownKeys"/>, else rejected; rows left empty are
    /// dropped when <paramref name="allowEmptySequences"/>, else rejected. Errors name the column, the row and
    /// <paramref name="role"/> (e.g. "validation data"); ML.NET schema errors name the column when it is missing or of another type.
    /// </summary>
    public static int[] Read(IExceptionContext ectx, IDataView data, string columnName, TokenKeyMap keys, bool skipUnknownKeys, bool allowEmptySequences, string role)
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
                for (int i = 0; i < row.Length; i++)
                {
                    if (keys.TryGetId(row[i], out int id)) ids.Add(id);
                    else if (!skipUnknownKeys) throw ectx.Except($"{keys.UnknownKeyMessage(row[i], columnName, cursor.Position, i)} ({role})");
                }
                int appended = ids.Count - start - 1;
                if (appended == 0)
                {
                    if (!allowEmptySequences)
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
        Read(ectx, data, model.InputColumnName, model.Keys, model.SkipUnknownKeys, model.AllowEmptySequences, role);
}
