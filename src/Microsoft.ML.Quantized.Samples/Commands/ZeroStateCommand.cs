using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Zero-state traps in the study's character LM (docs/reproduction.md, Hou et al. Q6): trains one configuration of the
/// study's char-lm recipe one epoch at a time through its checkpoint and scores each epoch's own weights (not the best
/// epoch's): validation with the state carried (as training validates) and reset at every window, each validation stream's
/// mean, test with the state carried, every character as the first input from the zero state (the <see cref="ZeroStateTraps"/>
/// probes), and for a trapping character which layer holds the trap. Writes the <c>zero-state-{configuration}</c> section.
/// </summary>
internal static class ZeroStateCommand
{
    /// <summary>Characters of the test text the first-character probe continues with (from character 1,000 on).</summary>
    private const int PassageLength = 400;

    /// <summary>The probe scores the passage's last half, so a trap has 200 characters to show itself or fade.</summary>
    private const int TailStart = 200;

    public static System.CommandLine.Command Create()
    {
        var epochs = new Option<int>("--epochs") { Description = "Whole epochs (each epoch's own weights are scored).", DefaultValueFactory = _ => 5 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = whole epochs; anything else is a smoke run).", DefaultValueFactory = _ => 0 };
        var cell = new Option<string>("--cell") { Description = "lstm or gru.", DefaultValueFactory = _ => "lstm" };
        var layers = new Option<int>("--layers") { Description = "Recurrent layers.", DefaultValueFactory = _ => 2 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units per layer.", DefaultValueFactory = _ => 256 };
        var weights = new Option<string>("--weights") { Description = "Recurrent weight quantizer (registry name; none = float).", DefaultValueFactory = _ => "twn" };
        var norm = new Option<string>("--norm") { Description = "In-cell normalization: none, weight, layer, batch (per step), batch-shared.", DefaultValueFactory = _ => "layer" };
        var form = new Option<LayerNormForm>("--layer-norm-form") { Description = "Layer norm's form: PerGate (Hou et al.) or Joint (Ba et al., with LN(c)).", DefaultValueFactory = _ => LayerNormForm.PerGate };
        var seed = new Option<int>("--seed") { Description = "Training seed.", DefaultValueFactory = _ => 2 };
        var stateReset = new Option<double>("--state-reset") { Description = "TrainingOptions.StateResetProbability: the chance that each training stream's state is zeroed before a window (0 = carried through the epoch, the study's recipe).", DefaultValueFactory = _ => 0.0 };
        var threshold = new Option<double>("--trap-threshold") { Description = "Cross-entropy (nats per character) over the passage's last 200 characters above which a first character counts as trapping; a uniform guess over Moby Dick's 83 characters scores ln 83 = 4.42.", DefaultValueFactory = _ => 3.0 };
        var checkpoints = new Option<DirectoryInfo>("--checkpoints") { Description = "Folder for the run's checkpoint (deleted once the section is written); an interrupted run resumes from its last whole epoch.", DefaultValueFactory = _ => new DirectoryInfo("artifacts/zero-state-checkpoints") };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose zero-state section for this configuration is replaced.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("zero-state",
            "Zero-state traps of the study's character LM: each epoch's own weights scored with carried and reset state, per validation stream, and with every character as the first input from the zero state.")
        {
            epochs, maxSteps, cell, layers, hidden, weights, norm, form, seed, stateReset, threshold, checkpoints, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(epochs), parse.GetValue(maxSteps), CellOption.Parse(parse.GetValue(cell)!, "--cell"), parse.GetValue(layers), parse.GetValue(hidden),
            parse.GetValue(weights)!, parse.GetValue(norm)!, parse.GetValue(form), parse.GetValue(seed), parse.GetValue(stateReset), parse.GetValue(threshold), parse.GetValue(checkpoints)!, parse.GetValue(output)!)));
        return command;
    }

    private sealed record Settings(int Epochs, int MaxSteps, RecurrentCellKind Cell, int Layers, int Hidden, string Weights, string Norm, LayerNormForm Form, int Seed,
        double StateReset, double TrapThreshold, DirectoryInfo Checkpoints, FileInfo Output)
    {
        /// <summary>The cell as the command line names it: <c>lstm</c> or <c>gru</c>.</summary>
        public string CellName => Cell.ToString().ToLowerInvariant();

        /// <summary>The section and checkpoint name, e.g. <c>lstm2x256-twn-layer-pergate-seed2</c> (<c>-reset0.05</c> appended with state resets).</summary>
        public string Label => $"{CellName}{Layers}x{Hidden}-{Weights}-{Norm}{(Norm == "layer" ? "-" + Form.ToString().ToLowerInvariant() : "")}-seed{Seed}" +
            (StateReset > 0 ? "-reset" + StateResetText : "");

        /// <summary>The state-reset probability as written in labels, headings and the command line.</summary>
        public string StateResetText => StateReset.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>One epoch's scores (cross-entropies in nats per character).</summary>
    private sealed record EpochScores(int Epoch, double TrainingLoss, double Validation, double ValidationReset, double[] ValidationStreams,
        double Test, IReadOnlyList<(string Character, double Tail)> Trapping, double MeanTail, double[]? ZeroedLayers);

    private static int Run(Settings s)
    {
        if (s.Epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {s.Epochs}.");
        if (s.Layers < 1 || s.Hidden < 1) throw new ArgumentException($"--layers and --hidden must be at least 1; got {s.Layers} and {s.Hidden}.");
        if (!(s.StateReset >= 0 && s.StateReset < 1)) throw new ArgumentException($"--state-reset must be in [0, 1); got {s.StateReset}.");
        var load = BenchmarkCommand.LoadAverage();
        var text = EmbeddedCorpus.MobyDick();
        var (train, validation, test) = EmbeddedCorpus.Split(text);
        var vocabulary = Vocabulary.FromCharacters(text);
        var validationTokens = vocabulary.Encode(validation, skipUnknownCharacters: true);
        var testTokens = vocabulary.Encode(test, skipUnknownCharacters: true);
        var passage = testTokens.Skip(1000).Take(PassageLength).ToArray();
        int streams = PackedLanguageModel.EvaluationStreams(validationTokens.Length);
        var model = StudyCommand.CharacterModel(new QuantizedRecurrentOptions
        {
            Cell = s.Cell, Layers = s.Layers, HiddenSize = s.Hidden, Normalization = StudyCommand.ParseNormalization(s.Norm, "--norm"),
            LayerNormForm = s.Form, WeightQuantizer = QuantizerRegistry.Parse(s.Weights),
        });
        var folder = Path.Combine(s.Checkpoints.FullName, s.Label);
        var rows = new List<EpochScores>();
        for (int epoch = 1; epoch <= s.Epochs; epoch++)
        {
            // Training to `epoch` epochs resumes from the checkpoint of the epoch before: one more epoch, exactly as one run.
            var training = StudyCommand.CharacterTraining(epoch, s.MaxSteps);
            training.Seed = s.Seed;
            training.StateResetProbability = s.StateReset;
            training.CheckpointDirectory = folder;
            using var trained = ConsoleProgress.Run($"{s.Label} to epoch {epoch}", progress => QuantizedLanguageModel.Train(vocabulary, train, validation, model, training, progress));
            var network = trained.Network;
            TrainingLoop.LoadWeights(network, Checkpoint.LastEpochWeights(folder));
            network.eval();
            var carried = ZeroStateTraps.StreamCrossEntropy(network, validationTokens, streams, training.SequenceLength, resetEachWindow: false);
            var reset = ZeroStateTraps.StreamCrossEntropy(network, validationTokens, streams, training.SequenceLength, resetEachWindow: true);
            var testScore = ZeroStateTraps.StreamCrossEntropy(network, testTokens, PackedLanguageModel.EvaluationStreams(testTokens.Length), training.SequenceLength, resetEachWindow: false);
            var tails = ZeroStateTraps.TailCrossEntropyByFirstToken(network, passage, TailStart);
            var trappingTokens = Enumerable.Range(0, tails.Length).Where(t => tails[t] > s.TrapThreshold).ToList();
            var zeroed = trappingTokens.Count == 0 ? null : Enumerable.Range(-1, s.Layers + 1)
                .Select(layer => ZeroStateTraps.ContinuedWithLayerZeroed(network, trappingTokens[0], passage, TailStart - 1, layer)).ToArray();
            var trapping = trappingTokens.Select(t => (Character: vocabulary.Decode(new[] { t }), Tail: tails[t])).ToList();
            rows.Add(new EpochScores(epoch, trained.History[^1].TrainingLoss, carried.Mean, reset.Mean, carried.PerStream, testScore.Mean, trapping, tails.Average(), zeroed));
        }
        var markdown = Render(s, rows, streams, vocabulary.Count, load);
        BenchmarkCommand.WriteSection(s.Output, markdown, $"<!-- bench:zero-state-{s.Label} -->", $"<!-- /bench:zero-state-{s.Label} -->");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        AnsiConsole.WriteLine(markdown);
        return 0;
    }

    private static string Render(Settings s, List<EpochScores> rows, int streams, int vocabularySize, string? load)
    {
        static string F(double x) => x.ToString("F3", CultureInfo.InvariantCulture);
        static string Shown(string character) => character switch { "\n" => "\\n", " " => "space", "|" => "\\|", "`" => "'`'", _ => character };
        var sb = new StringBuilder();
        sb.AppendLine($"## Zero-state traps: character LM, {s.CellName.ToUpperInvariant()} {s.Layers} x {s.Hidden}, {s.Weights} weights, {s.Norm} norm{(s.Norm == "layer" ? $" ({s.Form})" : "")}, seed {s.Seed}" +
            (s.StateReset > 0 ? $", state reset {s.StateResetText}" : ""));
        sb.AppendLine();
        sb.AppendLine($"Written by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- zero-state --cell {s.CellName} --layers {s.Layers} --hidden {s.Hidden} --weights {s.Weights} " +
            $"--norm {s.Norm} --layer-norm-form {s.Form} --seed {s.Seed} --epochs {s.Epochs}{(s.StateReset > 0 ? $" --state-reset {s.StateResetText}" : "")}{(s.MaxSteps > 0 ? $" --max-steps {s.MaxSteps} (a smoke run, not a result)" : "")}` on " +
            $"{DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}, {BenchmarkCommand.MachineDescription()}, load {load ?? "n/a"} at the start. " +
            $"The study's char-lm recipe{(s.StateReset > 0 ? $" with each training stream's state zeroed before a window with probability {s.StateResetText} (TrainingOptions.StateResetProbability)" : "")}, trained one epoch at a time through its checkpoint; every column scores that epoch's own weights " +
            $"(cross-entropy in nats per character). Validation as training scores it ({streams} parallel streams, 100-character windows, " +
            $"state carried) and with the state reset at every window; the worst validation stream's own mean; test with the state carried. " +
            $"Trapping first characters: of the {vocabularySize} characters, each as the first input from the zero state followed by " +
            $"{PassageLength} test characters, those whose last {PassageLength - TailStart} score above {F(s.TrapThreshold)} nats (the mean over all first " +
            $"characters beside it). Zeroed layer: after the first trapping character and {TailStart - 1} passage characters, the next " +
            $"{PassageLength - TailStart} scored from that state as is / with each layer's {(s.Cell == RecurrentCellKind.Lstm ? "h and c" : "h")} set to zero.");
        sb.AppendLine();
        sb.AppendLine("| epoch | training loss | validation | validation, reset each window | worst validation stream | test | trapping first characters | tail (mean over all) | as is / zeroed layer 1, 2, ... |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---|---:|---|");
        foreach (var r in rows)
        {
            int worst = Array.IndexOf(r.ValidationStreams, r.ValidationStreams.Max());
            string trapping = r.Trapping.Count == 0 ? "none" : $"{r.Trapping.Count}: {string.Join(" ", r.Trapping.Select(t => Shown(t.Character)))}";
            string tail = r.Trapping.Count == 0 ? $"- ({F(r.MeanTail)})" : $"{F(r.Trapping.Max(t => t.Tail))} ({F(r.MeanTail)})";
            string zeroed = r.ZeroedLayers is null ? "-" : string.Join(" / ", r.ZeroedLayers.Select(F));
            sb.AppendLine($"| {r.Epoch} | {F(r.TrainingLoss)} | {F(r.Validation)} | {F(r.ValidationReset)} | {F(r.ValidationStreams[worst])} (stream {worst}) | {F(r.Test)} | {trapping} | {tail} | {zeroed} |");
        }
        return sb.ToString();
    }
}
