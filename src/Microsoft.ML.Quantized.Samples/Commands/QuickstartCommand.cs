using System.CommandLine;
using System.Text.Json;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// The quickstart: a float and a ternary (TWN + per-gate layer norm, Hou et al.) character LSTM trained on the embedded Moby Dick,
/// compared on bits per character, size and speed, each followed by a generated sample.
/// </summary>
internal static class QuickstartCommand
{
    private static readonly Option<FileInfo?> JsonOption = new("--json") { Description = "Also write the results as JSON to this file." };
    private static readonly Option<int> EpochsOption = new("--epochs") { Description = "Epochs per model.", DefaultValueFactory = _ => 1 };
    private static readonly Option<int> StepsOption = new("--max-steps") { Description = "Optimizer steps per epoch (0 = the whole text).", DefaultValueFactory = _ => 500 };
    private static readonly Option<int> HiddenOption = new("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 256 };
    private static readonly Option<int> SeedOption = new("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };

    public static void AddOptionsTo(RootCommand root)
    {
        root.Options.Add(JsonOption);
        root.Options.Add(EpochsOption);
        root.Options.Add(StepsOption);
        root.Options.Add(HiddenOption);
        root.Options.Add(SeedOption);
        root.SetAction(parse => Run(parse.GetValue(JsonOption), parse.GetValue(EpochsOption), parse.GetValue(StepsOption),
            parse.GetValue(HiddenOption), parse.GetValue(SeedOption)));
    }

    private static int Run(FileInfo? json, int epochs, int maxSteps, int hidden, int seed)
    {
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        AnsiConsole.MarkupLine($"[bold]Moby Dick[/] character LM: {train.Length:N0} training characters, {vocabulary.Count} distinct; LSTM 1x{hidden}.");

        var training = new TrainingOptions
        {
            Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 32, SequenceLength = 100,
            Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = seed,
        };
        var configurations = new (string Name, QuantizerOptions Quantizer, RecurrentNormalization Normalization)[]
        {
            ("float", new QuantizerOptions(), RecurrentNormalization.None),
            ("ternary (TWN + layer norm per gate)", new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet }, RecurrentNormalization.Layer),
        };

        var results = new List<QuickstartResult>();
        foreach (var (name, quantizer, normalization) in configurations)
        {
            var options = new LanguageModelOptions
            {
                EmbeddingSize = 64,
                Recurrent = new QuantizedRecurrentOptions { HiddenSize = hidden, WeightQuantizer = quantizer, Normalization = normalization },
            };
            using var model = ConsoleProgress.Run(name, progress =>
                QuantizedLanguageModel.Train(vocabulary, train, validation, options, training, progress));
            var evaluation = model.Evaluate(test);
            var size = model.SizeReport();
            results.Add(new QuickstartResult(name, size.BitsPerQuantizedWeight, size.PackedBytes, size.Float32Bytes,
                evaluation.BitsPerToken, model.History.Average(h => h.UnitsPerSecond), model.UsesFusedKernel,
                model.Generate("Call me Ishmael. ", 240, temperature: 0.7, seed: seed)));
        }

        var table = new Table().AddColumns("config", "bits/weight", "packed", "float32", "test BPC", "train tok/s", "kernel");
        foreach (var r in results)
            table.AddRow(Markup.Escape(r.Config), r.BitsPerWeight > 0 ? $"{r.BitsPerWeight:F2}" : "32 (float)", Bytes(r.PackedBytes), Bytes(r.Float32Bytes), $"{r.BitsPerCharacter:F3}", $"{r.TokensPerSecond:N0}", r.FusedKernel ? "fused" : "cell loop");
        AnsiConsole.Write(table);
        foreach (var r in results)
            AnsiConsole.Write(new Panel(Markup.Escape("Call me Ishmael. " + r.Sample)).Header(Markup.Escape(r.Config)));
        if (json is not null)
        {
            File.WriteAllText(json.FullName, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
            AnsiConsole.MarkupLine($"Results written to [blue]{Markup.Escape(json.FullName)}[/].");
        }
        return 0;
    }

    internal static string Bytes(long bytes) => bytes >= 1 << 20 ? $"{bytes / 1048576.0:F2} MB" : $"{bytes / 1024.0:F1} KB";

    private sealed record QuickstartResult(string Config, double BitsPerWeight, long PackedBytes, long Float32Bytes,
        double BitsPerCharacter, double TokensPerSecond, bool FusedKernel, string Sample);
}
