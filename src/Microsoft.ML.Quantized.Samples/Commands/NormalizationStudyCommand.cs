using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Hou et al. 2019 on the character LM (REPRODUCTION.md, "Normalization helps training of quantized LSTM", questions 1,
/// 2, 4-7): every weight quantizer with every in-cell normalization, trained for whole epochs on the embedded Moby Dick
/// with the best validation epoch kept; per row the test bits per character, the packed size, and lambda_1 of the
/// recurrent matrix before and after quantization with the learned gain. Rows are appended to a JSON-lines results file as
/// they finish and a rerun skips the rows already there, so a study can span several sessions; the
/// <c>normalization-study</c> section of docs/reproduction.md is rewritten from that file after every row.
/// </summary>
internal static class NormalizationStudyCommand
{
    private const string SectionStart = "<!-- bench:normalization-study -->";
    private const string SectionEnd = "<!-- /bench:normalization-study -->";
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static System.CommandLine.Command Create()
    {
        var epochs = new Option<int>("--epochs") { Description = "Whole epochs per configuration (the best validation epoch is kept).", DefaultValueFactory = _ => 5 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = whole epochs; anything else is a smoke run, not a result).", DefaultValueFactory = _ => 0 };
        var cell = new Option<string>("--cell") { Description = "lstm or gru.", DefaultValueFactory = _ => "lstm" };
        var layers = new Option<int>("--layers") { Description = "Recurrent layers.", DefaultValueFactory = _ => 1 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units per layer.", DefaultValueFactory = _ => 256 };
        var configs = new Option<string>("--configs") { Description = "Comma-separated weight quantizer names (registry names).", DefaultValueFactory = _ => "none,bc,bwn,twn,alt2" };
        var norms = new Option<string>("--norms") { Description = "Comma-separated normalizations: none, weight, layer, batch (per step), batch-shared.", DefaultValueFactory = _ => "none,weight,layer,batch" };
        var results = new Option<FileInfo>("--results") { Description = "JSON-lines file the rows are appended to (and read back to skip finished rows).", DefaultValueFactory = _ => new FileInfo("docs/reproduction-normalization.jsonl") };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose normalization-study section is rewritten.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("normalization-study",
            "Hou et al. 2019 on the character LM: every quantizer x every in-cell normalization, whole epochs, lambda_1 before and after quantization; resumable.")
        {
            epochs, maxSteps, cell, layers, hidden, configs, norms, results, output,
        };
        command.SetAction(parse => Run(parse.GetValue(epochs), parse.GetValue(maxSteps), parse.GetValue(cell)!, parse.GetValue(layers), parse.GetValue(hidden),
            parse.GetValue(configs)!, parse.GetValue(norms)!, parse.GetValue(results)!, parse.GetValue(output)!));
        return command;
    }

    /// <summary>One finished configuration, as stored in the results file.</summary>
    internal sealed record StudyRow(
        string Cell, int Layers, int Hidden, int Epochs, int MaxSteps, string Weights, string Normalization,
        string Outcome, int BestEpoch, double ValidationBitsPerCharacter, double TestBitsPerCharacter, double BitsPerWeight, long PackedBytes,
        double FloatLambda1, double QuantizedLambda1, double MeanGain, double Seconds, string Date, string Machine, string? Load)
    {
        public bool SameRun(StudyRow other) => Cell == other.Cell && Layers == other.Layers && Hidden == other.Hidden && Epochs == other.Epochs && MaxSteps == other.MaxSteps;
    }

    private static int Run(int epochs, int maxSteps, string cellName, int layers, int hidden, string configs, string norms, FileInfo results, FileInfo output)
    {
        if (epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {epochs}.");
        var cell = cellName switch
        {
            "lstm" => RecurrentCellKind.Lstm,
            "gru" => RecurrentCellKind.Gru,
            _ => throw new ArgumentException($"--cell: unknown cell '{cellName}' (lstm, gru)."),
        };
        var normalizations = Split(norms).Select(n => (Name: n, Value: ParseNormalization(n))).ToList();
        var quantizers = Split(configs).Select(q => (Name: q, Options: QuantizerRegistry.Parse(q))).ToList();
        var load = BenchmarkCommand.LoadAverage();
        var rows = Read(results);
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);

        foreach (var (quantizerName, quantizer) in quantizers)
        {
            foreach (var (normName, normalization) in normalizations)
            {
                var key = new StudyRow(cellName, layers, hidden, epochs, maxSteps, quantizerName, normName, "", 0, 0, 0, 0, 0, 0, 0, 0, 0, "", "", null);
                if (rows.Any(r => r.SameRun(key) && r.Weights == quantizerName && r.Normalization == normName))
                {
                    AnsiConsole.MarkupLine($"{Markup.Escape(Label(key))}: in {Markup.Escape(results.Name)} already, skipped.");
                    continue;
                }
                var row = TrainOne(key, vocabulary, train, validation, test, cell, quantizer, normalization, load);
                rows.Add(row);
                results.Directory?.Create();
                File.AppendAllText(results.FullName, JsonSerializer.Serialize(row, Json) + "\n");
                BenchmarkCommand.WriteSection(output, Render(rows), SectionStart, SectionEnd);
                AnsiConsole.MarkupLine($"{Markup.Escape(Label(row))}: {Markup.Escape(row.Outcome)}, test {row.TestBitsPerCharacter:F3} BPC");
            }
        }
        BenchmarkCommand.WriteSection(output, Render(rows), SectionStart, SectionEnd);
        AnsiConsole.MarkupLine($"Rows in [blue]{Markup.Escape(results.FullName)}[/]; section written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    private static StudyRow TrainOne(StudyRow key, Vocabulary vocabulary, string train, string validation, string test,
        RecurrentCellKind cell, QuantizerOptions quantizer, RecurrentNormalization normalization, string? load)
    {
        var options = new LanguageModelOptions
        {
            EmbeddingSize = 64,
            Recurrent = new QuantizedRecurrentOptions { Cell = cell, Layers = key.Layers, HiddenSize = key.Hidden, Normalization = normalization, WeightQuantizer = quantizer },
        };
        var training = new TrainingOptions
        {
            Epochs = key.Epochs, MaxStepsPerEpoch = key.MaxSteps, BatchSize = 32, SequenceLength = 100,
            Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1,
        };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stamp = key with { Date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), Machine = BenchmarkCommand.MachineDescription(), Load = load };
        try
        {
            using var model = ConsoleProgress.Run(Label(key), progress => QuantizedLanguageModel.Train(vocabulary, train, validation, options, training, progress));
            var best = model.History.MinBy(h => h.ValidationLoss)!;
            var evaluation = model.Evaluate(test);
            var size = model.SizeReport();
            var spectrum = RecurrentSpectrum.Of(model.Network.Recurrent.Layers[0]);
            return stamp with
            {
                Outcome = "trained", BestEpoch = best.Epoch, ValidationBitsPerCharacter = best.ValidationLoss / Math.Log(2), TestBitsPerCharacter = evaluation.BitsPerToken,
                BitsPerWeight = size.QuantizedParameterCount > 0 ? size.BitsPerQuantizedWeight : 32, PackedBytes = size.PackedBytes,
                FloatLambda1 = spectrum.FloatLambda1, QuantizedLambda1 = spectrum.QuantizedLambda1, MeanGain = spectrum.MeanGain, Seconds = clock.Elapsed.TotalSeconds,
            };
        }
        catch (TrainingDivergedException e)
        {
            return stamp with
            {
                Outcome = $"diverged (epoch {e.Epoch}, step {e.Step})", TestBitsPerCharacter = double.NaN, ValidationBitsPerCharacter = double.NaN,
                FloatLambda1 = double.NaN, QuantizedLambda1 = double.NaN, MeanGain = double.NaN, Seconds = clock.Elapsed.TotalSeconds,
            };
        }
    }

    private static string Render(List<StudyRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## Normalization helps training of quantized LSTM (Hou et al. 2019): the character LM");
        sb.AppendLine();
        sb.AppendLine("Moby Dick (embedded, 90/5/5 split by position), embedding 64, batch 32 x 100 characters, Adam 3e-3 (halved on a validation plateau), " +
                      "clip 1.0, seed 1, the best validation epoch kept. Bits per character on the test part. lambda_1: the largest singular value of layer 0's " +
                      "recurrent matrix W_hh, float (shadow) and as the cell uses it (quantized, then row-normalized under weight norm); gain: mean |g| of the " +
                      "hidden-side normalization (weight norm's row norms, layer or batch norm's gains). Rows come from `dotnet run --project " +
                      "src/Microsoft.ML.Quantized.Samples -c Release -- normalization-study` runs with the options named in each table's heading, " +
                      "appended to docs/reproduction-normalization.jsonl as they finished; date, machine and load per row are in that file.");
        foreach (var group in rows.GroupBy(r => (r.Cell, r.Layers, r.Hidden, r.Epochs, r.MaxSteps)))
        {
            var (cell, layers, hidden, epochs, maxSteps) = group.Key;
            var floatRow = group.FirstOrDefault(r => r.Weights == "none" && r.Normalization == "none" && r.Outcome == "trained");
            sb.AppendLine();
            sb.AppendLine($"**{cell.ToUpperInvariant()} {layers} x {hidden}, {epochs} epoch(s){(maxSteps > 0 ? $" of at most {maxSteps} steps (smoke run, not a result)" : "")}** " +
                          $"(`--cell {cell} --layers {layers} --hidden {hidden} --epochs {epochs}{(maxSteps > 0 ? $" --max-steps {maxSteps}" : "")}`)");
            sb.AppendLine();
            sb.AppendLine("| weights | norm | outcome | best epoch | test BPC | vs float | bits/weight | packed | lambda_1 float | lambda_1 quantized | gain |");
            sb.AppendLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in group)
            {
                bool trained = r.Outcome == "trained";
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Weights} | {r.Normalization} | {r.Outcome} | {(trained ? r.BestEpoch.ToString(CultureInfo.InvariantCulture) : "-")} | " +
                    $"{(trained ? r.TestBitsPerCharacter.ToString("F3", CultureInfo.InvariantCulture) : "-")} | " +
                    $"{(trained && floatRow is not null ? (r.TestBitsPerCharacter / floatRow.TestBitsPerCharacter).ToString("F3", CultureInfo.InvariantCulture) : "-")} | " +
                    $"{(r.BitsPerWeight >= 32 ? "32" : r.BitsPerWeight.ToString("F2", CultureInfo.InvariantCulture))} | {(trained ? QuickstartCommand.Bytes(r.PackedBytes) : "-")} | " +
                    $"{Number(r.FloatLambda1)} | {Number(r.QuantizedLambda1)} | {Number(r.MeanGain)} |"));
            }
        }
        return sb.ToString();
    }

    private static string Number(double value) => double.IsNaN(value) ? "-" : value.ToString("F2", CultureInfo.InvariantCulture);

    private static string Label(StudyRow r) => $"{r.Cell} {r.Layers}x{r.Hidden} {r.Weights} + {r.Normalization} norm";

    private static List<StudyRow> Read(FileInfo results)
        => results.Exists
            ? File.ReadLines(results.FullName).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<StudyRow>(l, Json)
                ?? throw new InvalidDataException($"{results.FullName}: a line is not a study row: '{l}'.")).ToList()
            : new List<StudyRow>();

    private static IEnumerable<string> Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static RecurrentNormalization ParseNormalization(string name) => name switch
    {
        "none" => RecurrentNormalization.None,
        "weight" => RecurrentNormalization.Weight,
        "layer" => RecurrentNormalization.Layer,
        "batch" => RecurrentNormalization.BatchPerStep,
        "batch-shared" => RecurrentNormalization.BatchShared,
        _ => throw new ArgumentException($"--norms: unknown normalization '{name}' (none, weight, layer, batch, batch-shared)."),
    };
}
