using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Scores rows with any ML.NET model file saved by <c>mlContext.Model.Save</c> (the <c>lm</c> command's
/// <c>--save</c>, or a user's own pipeline): loads the model in this fresh process, reads tab-separated input rows whose header
/// names the model's input columns, and writes the chosen output columns as tab-separated text, numbers in their
/// shortest round-trip form (parsing a printed value gives back the exact float or double).
/// </summary>
/// <remarks>
/// Input: the first line names columns; each of the model's input columns found there is read from that field
/// (a fixed-size vector column of n values from n fields starting at the one with its name, or at <c>Name[0]</c>).
/// Text is read as is (no quoting), so text fields must not contain tabs. Output: a header of column names, then one
/// line per row and one field per column; vector values are separated by single spaces; key values are written as
/// their names when the column has them (e.g. the predicted label of a multiclass trainer), else as numbers.
/// A missing, damaged or foreign model file, unreadable input or an unknown column is a one-line error on standard
/// error and exit code 1; with <c>--out</c>, a run that fails writes nothing (rows go to a temporary file first).
/// </remarks>
internal static class ScoreCommand
{
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static System.CommandLine.Command Create()
    {
        var model = new System.CommandLine.Option<FileInfo>("--model") { Description = "ML.NET model zip written by mlContext.Model.Save.", Required = true };
        var input = new System.CommandLine.Option<FileInfo>("--input") { Description = "Tab-separated rows; the first line names the model's input columns (a vector column of n values spans n fields).", Required = true };
        var columns = new System.CommandLine.Option<string[]>("--columns") { Description = "Output columns to write (default: every column the model adds).", AllowMultipleArgumentsPerToken = true };
        var output = new System.CommandLine.Option<FileInfo?>("--out") { Description = "File to write (default: standard output)." };
        var command = new System.CommandLine.Command("score", "Score tab-separated rows with a saved ML.NET model (any pipeline) and print the chosen output columns.")
        {
            model, input, columns, output,
        };
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(input)!, parse.GetValue(columns), parse.GetValue(output)));
        return command;
    }

    private static int Run(FileInfo modelFile, FileInfo inputFile, string[]? columnNames, FileInfo? outputFile)
    {
        var ml = new MLContext(seed: 1);
        ITransformer model;
        DataViewSchema inputSchema;
        try
        {
            model = ml.Model.Load(modelFile.FullName, out inputSchema);
        }
        catch (Exception e) when (IsUsageError(e))
        {
            return Fail($"Cannot load the model '{modelFile.FullName}': {Messages(e)}");
        }
        try
        {
            var scored = model.Transform(Read(ml, inputSchema, inputFile));
            var chosen = columnNames is { Length: > 0 } ? columnNames.Select(name => Column(scored.Schema, name)).ToArray() : Added(scored.Schema, inputSchema);
            if (outputFile is null) Write(scored, chosen, Console.Out);
            else WriteFile(scored, chosen, outputFile);
            return 0;
        }
        catch (Exception e) when (IsUsageError(e))
        {
            return Fail($"Cannot score '{inputFile.FullName}': {Messages(e)}");
        }
        finally
        {
            Dispose(model);
        }
    }

    /// <summary>
    /// Writes the rows to a temporary file beside <paramref name="file"/> and moves it into place only when every row was
    /// scored, so a run that fails on some row leaves no partial output (and an earlier output untouched).
    /// </summary>
    private static void WriteFile(IDataView scored, DataViewSchema.Column[] chosen, FileInfo file)
    {
        var temporary = file.FullName + ".partial";
        try
        {
            using (var writer = new StreamWriter(temporary))
                Write(scored, chosen, writer);
            File.Move(temporary, file.FullName, overwrite: true);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>What a missing, damaged or foreign file, bad input rows or a wrong column name raise (ML.NET's included).</summary>
    private static bool IsUsageError(Exception e) =>
        e is IOException or InvalidDataException or InvalidOperationException or FormatException or ArgumentException or UnauthorizedAccessException;

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 1;
    }

    private static string Messages(Exception e)
    {
        var messages = new List<string>();
        for (var x = e; x is not null; x = x.InnerException)
            if (x is not TargetInvocationException && !messages.Contains(x.Message)) messages.Add(x.Message);
        return string.Join(" -> ", messages);
    }

    /// <summary>Frees what the loaded model holds (the torch tensors of quantized transformers and model parameters).</summary>
    private static void Dispose(ITransformer model)
    {
        if (model is IEnumerable<ITransformer> chain)
            foreach (var part in chain) Dispose(part);
        if (model is IPredictionTransformer<object> { Model: IDisposable parameters }) parameters.Dispose();
        (model as IDisposable)?.Dispose();
    }

    /// <summary>The input rows: every column of the model's input schema that the header names, with its saved type.</summary>
    private static IDataView Read(MLContext ml, DataViewSchema inputSchema, FileInfo inputFile)
    {
        string[] header;
        using (var reader = inputFile.OpenText())
            header = (reader.ReadLine() ?? throw new InvalidDataException($"The input file '{inputFile.FullName}' is empty: it needs a header line naming the model's input columns.")).Split('\t');
        var columns = new List<TextLoader.Column>();
        foreach (var column in inputSchema.Where(c => !c.IsHidden))
        {
            int at = Array.IndexOf(header, column.Name);
            if (at < 0) at = Array.IndexOf(header, column.Name + "[0]");
            if (at < 0) continue;
            var item = ItemType(column.Type);
            if (item is KeyDataViewType || !Kinds.TryGetValue(item.RawType, out var kind))
                throw new InvalidDataException($"Input column '{column.Name}' has type {column.Type}, which the score command cannot read from text.");
            int size = column.Type is VectorDataViewType vector ? vector.Size : 1;
            if (size == 0) throw new InvalidDataException($"Input column '{column.Name}' is a variable-length vector, which the score command cannot read from text.");
            if (at + size > header.Length) throw new InvalidDataException($"Input column '{column.Name}' holds {size} values but the header has only {header.Length - at} fields from '{header[at]}'.");
            columns.Add(column.Type is VectorDataViewType ? new TextLoader.Column(column.Name, kind, at, at + size - 1) : new TextLoader.Column(column.Name, kind, at));
        }
        return ml.Data.LoadFromTextFile(inputFile.FullName, columns.ToArray(), separatorChar: '\t', hasHeader: true, allowQuoting: false, trimWhitespace: false);
    }

    private static DataViewType ItemType(DataViewType type) => type is VectorDataViewType vector ? vector.ItemType : type;

    private static readonly Dictionary<Type, DataKind> Kinds = new()
    {
        [typeof(ReadOnlyMemory<char>)] = DataKind.String, [typeof(bool)] = DataKind.Boolean,
        [typeof(float)] = DataKind.Single, [typeof(double)] = DataKind.Double,
        [typeof(sbyte)] = DataKind.SByte, [typeof(short)] = DataKind.Int16, [typeof(int)] = DataKind.Int32, [typeof(long)] = DataKind.Int64,
        [typeof(byte)] = DataKind.Byte, [typeof(ushort)] = DataKind.UInt16, [typeof(uint)] = DataKind.UInt32, [typeof(ulong)] = DataKind.UInt64,
    };

    private static DataViewSchema.Column Column(DataViewSchema schema, string name) =>
        schema.GetColumnOrNull(name) ?? throw new ArgumentException(
            $"--columns: the model's output has no column '{name}'. Its columns: {string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => c.Name))}.");

    /// <summary>The visible output columns that are not input columns: what the model adds.</summary>
    private static DataViewSchema.Column[] Added(DataViewSchema output, DataViewSchema input) =>
        output.Where(c => !c.IsHidden && input.GetColumnOrNull(c.Name) is null).ToArray();

    private static void Write(IDataView data, DataViewSchema.Column[] columns, TextWriter writer)
    {
        writer.WriteLine(string.Join('\t', columns.Select(c => c.Name)));
        using var cursor = data.GetRowCursor(columns);
        var fields = columns.Select(c => Formatter(cursor, c)).ToArray();
        while (cursor.MoveNext()) writer.WriteLine(string.Join('\t', fields.Select(field => field())));
    }

    /// <summary>Reads and formats one column of the cursor's current row.</summary>
    private static Func<string> Formatter(DataViewRow row, DataViewSchema.Column column)
    {
        var item = ItemType(column.Type);
        if (item is KeyDataViewType)
        {
            if (item.RawType != typeof(uint)) throw new ArgumentException($"Column '{column.Name}' has key type {item}; the score command writes only UInt32 keys.");
            var names = KeyNames(column);
            return Make<uint>(row, column, key => key == 0 ? "" : names is not null && key <= names.Length ? names[key - 1] : key.ToString(Invariant));
        }
        if (item.RawType == typeof(float)) return Make<float>(row, column, x => x.ToString("R", Invariant));
        if (item.RawType == typeof(double)) return Make<double>(row, column, x => x.ToString("R", Invariant));
        if (item.RawType == typeof(bool)) return Make<bool>(row, column, x => x ? "True" : "False");
        if (item.RawType == typeof(ReadOnlyMemory<char>)) return Make<ReadOnlyMemory<char>>(row, column, x => x.ToString());
        if (item.RawType == typeof(int)) return Make<int>(row, column, x => x.ToString(Invariant));
        if (item.RawType == typeof(uint)) return Make<uint>(row, column, x => x.ToString(Invariant));
        if (item.RawType == typeof(long)) return Make<long>(row, column, x => x.ToString(Invariant));
        throw new ArgumentException($"Column '{column.Name}' has type {column.Type}, which the score command does not write; choose other --columns.");
    }

    private static Func<string> Make<T>(DataViewRow row, DataViewSchema.Column column, Func<T, string> format)
    {
        if (column.Type is VectorDataViewType)
        {
            var vectorGetter = row.GetGetter<VBuffer<T>>(column);
            VBuffer<T> values = default;
            return () =>
            {
                vectorGetter(ref values);
                return string.Join(' ', values.DenseValues().Select(format));
            };
        }
        var getter = row.GetGetter<T>(column);
        T value = default!;
        return () =>
        {
            getter(ref value);
            return format(value);
        };
    }

    /// <summary>The names of a key column's values (its KeyValues annotation), or null when it has no text names.</summary>
    private static string[]? KeyNames(DataViewSchema.Column column)
    {
        var annotation = column.Annotations.Schema.GetColumnOrNull("KeyValues");
        if (annotation is not { Type: VectorDataViewType { ItemType: TextDataViewType } }) return null;
        VBuffer<ReadOnlyMemory<char>> names = default;
        column.Annotations.GetValue("KeyValues", ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }
}
