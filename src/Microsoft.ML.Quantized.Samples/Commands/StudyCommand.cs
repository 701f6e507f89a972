using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// The reproduction studies' grid (docs/reproduction.md): language models trained for whole epochs with the best validation
/// epoch kept, over every combination of weight quantizer, activation quantizer, in-cell normalization and activation slope
/// given, on the character LM (embedded Moby Dick, bits per character), the Brown word LM (the PTB recipe, perplexity) or
/// sequential MNIST (row by row, test accuracy).
/// Per row: the test figure, the packed size, and lambda_1 of the recurrent matrix before and after quantization with the
/// hidden-side gain (Hou et al. 2019's exploding-gradient condition). It answers Hou et al.'s questions 1, 2 and 4-7 (weights
/// x normalizations, GRU, 2 layers), HitNet's 1 and 4 (uniform vs threshold vs Bernoulli ternary on weights and activations,
/// more states) and 3 (slopes), and the converged tables of issue 14. Rows are appended to a JSON-lines results file as they
/// finish and a rerun skips the rows already there, so a study can span several sessions; the <c>study</c> section of
/// docs/reproduction.md is rewritten from that file after every row.
/// </summary>
internal static class StudyCommand
{
    private const string SectionStart = "<!-- bench:study -->";
    private const string SectionEnd = "<!-- /bench:study -->";
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public static System.CommandLine.Command Create()
    {
        var task = new Option<string>("--task") { Description = "char-lm (Moby Dick, 1 x 256 LSTM, Adam), word-lm (Brown, the PTB recipe: 1 x 300, SGD lr 20, dropout 0.5) or smnist (sequential MNIST row by row, 1 x 128, Adam).", DefaultValueFactory = _ => "char-lm" };
        var data = new Option<DirectoryInfo?>("--data") { Description = "word-lm: folder with the prepared Brown split (default data/brown; build/fetch-data.sh); smnist: folder with the MNIST IDX files (default data/mnist; build/fetch-data.sh --only mnist). Not used by char-lm." };
        var epochs = new Option<int>("--epochs") { Description = "Whole epochs per configuration (the best validation epoch is kept).", DefaultValueFactory = _ => 5 };
        var maxSteps = new Option<int>("--max-steps") { Description = "Cap on steps per epoch (0 = whole epochs; anything else is a smoke run, not a result).", DefaultValueFactory = _ => 0 };
        var cell = new Option<string>("--cell") { Description = "lstm or gru.", DefaultValueFactory = _ => "lstm" };
        var layers = new Option<int>("--layers") { Description = "Recurrent layers.", DefaultValueFactory = _ => 1 };
        var hidden = new Option<int>("--hidden") { Description = "Hidden units per layer (0 = the task's: 256 for char-lm, 300 for word-lm, 128 for smnist).", DefaultValueFactory = _ => 0 };
        var configs = new Option<string>("--configs") { Description = "Comma-separated weight quantizer names (registry names).", DefaultValueFactory = _ => "none,bc,bwn,twn,alt2" };
        var activations = new Option<string>("--activations") { Description = "Comma-separated activation quantizer names (registry names; none = float activations), each optionally followed by ':' and the activations it quantizes joined by '+' (gates, hidden, cell; default gates+hidden), e.g. uniform4:gates+cell.", DefaultValueFactory = _ => "none" };
        var slopes = new Option<string>("--slopes") { Description = "Comma-separated HitNet slopes lambda, each applied to every gate and to the cell output (0.5), or to some of them (forget=0.5, input+candidate=0.5; input, forget, candidate, output, cell); 1 = the standard functions.", DefaultValueFactory = _ => "1" };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated training seeds; each is its own row (the tables name seeds other than 1, the figures draw seed 1).", DefaultValueFactory = _ => "1" };
        var norms = new Option<string>("--norms") { Description = "Comma-separated normalizations: none, weight, layer, batch (per step), batch-shared, batch-recal (per step, its running statistics re-estimated over 100 training batches with the epoch's final weights before each validation: TrainingOptions.BatchNormRecalibrationSteps).", DefaultValueFactory = _ => "none,weight,layer,batch" };
        var results = new Option<FileInfo>("--results") { Description = "JSON-lines file the rows are appended to (and read back to skip finished rows).", DefaultValueFactory = _ => new FileInfo("docs/reproduction-study.jsonl") };
        var checkpoints = new Option<DirectoryInfo>("--checkpoints") { Description = "Folder for each unfinished row's per-epoch checkpoint (one subfolder per row, deleted when the row is written), so a row interrupted mid-training resumes from its last whole epoch.", DefaultValueFactory = _ => new DirectoryInfo("artifacts/study-checkpoints") };
        var retrain = new Option<bool>("--retrain") { Description = "Train configurations the results file already has again and replace their rows (to record what older rows lack, e.g. weight histograms); default: skip them." };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose study section is rewritten.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("study",
            "Reproduction grid on the character LM, the word LM or sequential MNIST: weight quantizers x activation quantizers x in-cell normalizations x slopes, whole epochs, lambda_1; resumable.")
        {
            task, data, epochs, maxSteps, cell, layers, hidden, configs, activations, norms, slopes, seeds, results, retrain, checkpoints, output,
        };
        command.SetAction(parse => Run(StudyTask.Parse(parse.GetValue(task)!, parse.GetValue(data)), parse.GetValue(epochs), parse.GetValue(maxSteps), parse.GetValue(cell)!,
            parse.GetValue(layers), parse.GetValue(hidden), Grid(parse.GetValue(configs)!, parse.GetValue(activations)!, parse.GetValue(norms)!, parse.GetValue(slopes)!, parse.GetValue(seeds)!),
            parse.GetValue(results)!, parse.GetValue(retrain), parse.GetValue(checkpoints)!, parse.GetValue(output)!));
        return command;
    }

    /// <summary>
    /// One finished configuration, as stored in the results file. Cross-entropies are in nats per token (a character or a
    /// word) or per image; the tables show them as bits per character or perplexity, and a classifier's
    /// <c>TestAccuracy</c> (absent in language-model rows) as a percentage. <c>Gates</c>: layer 0's post-activation histograms
    /// on the test data, by gate; <c>GradientNorms</c>: each epoch's mean gradient norm before clipping
    /// (<see cref="EpochSummary.MeanGradientNorm"/>) and <c>LargestGradientNorms</c> its largest; <c>WeightHistograms</c>:
    /// layer 0's float W_ih and W_hh over their mean magnitude (<see cref="ShadowWeightHistograms"/>); <c>TrainingLosses</c> and
    /// <c>ValidationLosses</c>: each epoch's mean training loss and its validation cross-entropy (the best of the latter picks
    /// <c>BestEpoch</c>); <c>Threads</c>: the
    /// intra-op thread count of the run that finished the row (a row is bit-reproducible only at the same count); all absent
    /// in rows from before they were recorded.
    /// </summary>
    internal sealed record StudyRow(
        string Task, string Cell, int Layers, int Hidden, int Epochs, int MaxSteps, string Weights, string Normalization,
        string Outcome, int BestEpoch, double ValidationCrossEntropy, double TestCrossEntropy, double BitsPerWeight, long PackedBytes,
        double FloatLambda1, double QuantizedLambda1, double MeanGain, double Seconds, string Date, string Machine, string? Load,
        string Activations = "none", double Slope = 1, IReadOnlyDictionary<string, ValueHistogram>? Gates = null,
        IReadOnlyList<double>? GradientNorms = null, IReadOnlyList<double>? LargestGradientNorms = null, string? SlopedGate = null,
        IReadOnlyDictionary<string, ValueHistogram>? WeightHistograms = null, double? TestAccuracy = null, int Seed = 1,
        int? Threads = null, IReadOnlyList<double>? TrainingLosses = null, IReadOnlyList<double>? ValidationLosses = null)
    {
        public bool SameRun(StudyRow other) => Task == other.Task && Cell == other.Cell && Layers == other.Layers && Hidden == other.Hidden
            && Epochs == other.Epochs && MaxSteps == other.MaxSteps;

        public bool SameConfiguration(StudyRow other) => SameRun(other) && Weights == other.Weights && Activations == other.Activations
            && Normalization == other.Normalization && Slope == other.Slope && SlopedGate == other.SlopedGate && Seed == other.Seed;

        /// <summary>The slope as the tables show it: <c>0.5</c> on every gate, <c>0.5 forget</c> on one.</summary>
        [System.Text.Json.Serialization.JsonIgnore]
        public string SlopeLabel => Slope.ToString("G3", CultureInfo.InvariantCulture) + (SlopedGate is null ? "" : " " + SlopedGate);

        /// <summary>The seed as labels show it: nothing for seed 1, <c>, seed 2</c> otherwise.</summary>
        [System.Text.Json.Serialization.JsonIgnore]
        public string SeedLabel => Seed == 1 ? "" : $", seed {Seed}";
    }

    /// <summary>
    /// One point of the grid. <see cref="Activations"/> is an activation quantizer's registry name, optionally followed by
    /// <c>:</c> and the activations it quantizes joined by <c>+</c> (gates, hidden, cell; default gates+hidden), e.g.
    /// <c>uniform4:gates+cell</c>. <see cref="SlopedGate"/>: the nonlinearities <see cref="Slope"/> applies to (input, forget,
    /// candidate, output, cell; several joined by <c>+</c>, e.g. <c>input+candidate</c>), or null for every gate and the cell output.
    /// </summary>
    internal sealed record StudyConfiguration(string Weights, string Activations, string Normalization, double Slope, string? SlopedGate = null, int Seed = 1)
    {
        public QuantizedRecurrentOptions Recurrent(RecurrentCellKind cell, int layers, int hidden)
        {
            var parts = Activations.Split(':', 2);
            return new()
            {
                Cell = cell, Layers = layers, HiddenSize = hidden, Normalization = ParseNormalization(Normalization),
                WeightQuantizer = QuantizerRegistry.Parse(Weights), ActivationQuantizer = QuantizerRegistry.Parse(parts[0]), Slopes = Slopes(),
                QuantizedActivations = parts.Length == 1 ? new QuantizedRecurrentOptions().QuantizedActivations : ActivationTargets.Parse(parts[1], $"--activations: '{Activations}'"),
            };
        }

        private ActivationSlopes Slopes()
        {
            if (SlopedGate is null) return ActivationSlopes.All(Slope);
            var slopes = new ActivationSlopes();
            foreach (var gate in SlopedGate.Split('+'))
            {
                switch (gate)
                {
                    case "input": slopes.InputGate = Slope; break;
                    case "forget": slopes.ForgetGate = Slope; break;
                    case "candidate": slopes.Candidate = Slope; break;
                    case "output": slopes.OutputGate = Slope; break;
                    case "cell": slopes.CellOutput = Slope; break;
                    default: throw new ArgumentException($"--slopes: unknown gate '{gate}' (input, forget, candidate, output, cell), several joined by '+', e.g. forget=0.5 or input+candidate=0.5.");
                }
            }
            return slopes;
        }

    }

    internal static List<StudyConfiguration> Grid(string weights, string activations, string norms, string slopes, string seeds = "1")
    {
        // "0.5" on every gate and the cell output; "forget=0.5" on one, "input+candidate=0.5" on several (slope 1 on named gates
        // is the standard cell: no gate named).
        var slopeValues = OptionList.Split(slopes).Select(v =>
        {
            var parts = v.Split('=', 2);
            string number = parts[^1];
            string? gate = parts.Length == 2 ? parts[0] : null;
            return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && x > 0 && x <= 4
                ? (Slope: x, Gate: x == 1 ? null : gate)
                : throw new ArgumentException($"--slopes: '{v}' is not a slope in (0, 4], on every gate (0.5), on one (forget=0.5) or on several (input+candidate=0.5).");
        }).ToList();
        var seedValues = SeedList.Parse(seeds);
        var grid = (from w in OptionList.Split(weights) from a in OptionList.Split(activations) from n in OptionList.Split(norms) from l in slopeValues from seed in seedValues
                    select new StudyConfiguration(w, a, n, l.Slope, l.Gate, seed)).ToList();
        foreach (var c in grid) c.Recurrent(RecurrentCellKind.Lstm, 1, 8); // every name parsed before any training: a typo fails at once
        return grid;
    }

    /// <summary>What a study reads off one trained model before it is disposed; <c>TestAccuracy</c> is null for a language model.</summary>
    private sealed record TrainedModel(IReadOnlyList<EpochSummary> History, double TestCrossEntropy, double? TestAccuracy,
        IReadOnlyDictionary<string, ValueHistogram> Gates, IReadOnlyDictionary<string, ValueHistogram> WeightHistograms,
        ModelSizeReport Size, RecurrentSpectrum Spectrum)
    {
        /// <summary>
        /// Reads a model scored by <paramref name="report"/> (its as-trained row, which records the gates on the way):
        /// layer 0's gate and weight histograms and spectrum, the size and the history.
        /// </summary>
        public static TrainedModel Of(RobustnessReport report, QuantizedRecurrentCell firstLayer, ModelSizeReport size,
            IReadOnlyList<EpochSummary> history, double testCrossEntropy, double? testAccuracy) =>
            new(history, testCrossEntropy, testAccuracy, HistogramPanelPlot.FirstLayer(report.Gates), ShadowWeightHistograms.Of(firstLayer),
                size, RecurrentSpectrum.Of(firstLayer));

        /// <summary>A report that only scores the model as trained (no re-quantized rows), recording its gates.</summary>
        public static RobustnessReportBuilder AsTrainedReport() =>
            new() { BitWidths = new List<int>(), StepSizeMultipliers = new List<double>(), IncludePowerOfTwoStep = false };
    }

    /// <summary>The character LM's model: a 64-wide embedding around <paramref name="recurrent"/>.</summary>
    internal static LanguageModelOptions CharacterModel(QuantizedRecurrentOptions recurrent) => new() { EmbeddingSize = 64, Recurrent = recurrent };

    /// <summary>The character LM's training: batch 32 x 100 characters, Adam 3e-3 halved on a validation plateau, clip 1.0, seed 1.</summary>
    internal static TrainingOptions CharacterTraining(int epochs, int maxSteps) => new()
    {
        Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 32, SequenceLength = 100,
        Optimizer = OptimizerKind.Adam, LearningRate = 3e-3, LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1,
    };

    /// <summary>
    /// A study's data, model and recipe: <see cref="Train"/> trains one configuration (the recurrent options, the training
    /// options and the progress label) and reads it.
    /// </summary>
    private sealed record StudyTask(string Name, int DefaultHidden, Func<int, int, TrainingOptions> Training,
        Func<QuantizedRecurrentOptions, TrainingOptions, string, TrainedModel> Train)
    {
        public static StudyTask Parse(string name, DirectoryInfo? data) => name switch
        {
            "char-lm" => data is null ? CharacterLanguageModel() : throw new ArgumentException("--data does not apply to --task char-lm (the embedded Moby Dick)."),
            "word-lm" => WordLanguageModel(data ?? new DirectoryInfo("data/brown")),
            "smnist" => SequentialMnist(data ?? new DirectoryInfo("data/mnist")),
            _ => throw new ArgumentException($"--task: unknown task '{name}' (char-lm, word-lm, smnist)."),
        };

        /// <summary>The quickstart's recipe on the embedded Moby Dick (90/5/5 by position).</summary>
        private static StudyTask CharacterLanguageModel()
        {
            var text = EmbeddedCorpus.MobyDick();
            var (train, validation, test) = EmbeddedCorpus.Split(text);
            return LanguageModel("char-lm", Vocabulary.FromCharacters(text), train, validation, test, 256, CharacterModel, CharacterTraining);
        }

        /// <summary>The word-LM benchmark's recipe (PTB small: SGD lr 20, /4 on a plateau, clip 0.25, dropout 0.5) on the Brown split.</summary>
        private static StudyTask WordLanguageModel(DirectoryInfo data)
        {
            var (train, validation, test) = BenchmarkCommand.ReadSplit(data);
            return LanguageModel("word-lm", Vocabulary.FromWords(train, 10_001), train, validation, test, 300,
                recurrent =>
                {
                    recurrent.Dropout = 0.5;
                    return new LanguageModelOptions { EmbeddingSize = recurrent.HiddenSize, EmbeddingDropout = 0.5, Recurrent = recurrent };
                },
                (epochs, maxSteps) => new TrainingOptions
                {
                    Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 20, SequenceLength = 35,
                    Optimizer = OptimizerKind.Sgd, LearningRate = 20, LearningRateDecay = 4, GradientClipNorm = 0.25, Seed = 1,
                });
        }

        private static StudyTask LanguageModel(string name, Vocabulary vocabulary, string train, string validation, string test, int defaultHidden,
            Func<QuantizedRecurrentOptions, LanguageModelOptions> model, Func<int, int, TrainingOptions> training) =>
            new(name, defaultHidden, training, (recurrent, options, label) =>
            {
                using var trained = ConsoleProgress.Run(label, progress => QuantizedLanguageModel.Train(vocabulary, train, validation, model(recurrent), options, progress));
                var report = TrainedModel.AsTrainedReport().Build(trained, m => m.Evaluate(test).CrossEntropy, "test cross-entropy");
                return TrainedModel.Of(report, trained.Network.Recurrent.Layers[0], trained.SizeReport(), trained.History, report.AsTrained.Metric, null);
            });

        /// <summary>
        /// The smnist benchmark's recipe (Adam 1e-3, halved on a plateau, batch 100, clip 1.0): each image row by row (one step
        /// per row of pixels), the last hidden state into a 10-way float head; the training file's last twelfth validates
        /// (MNIST's 60,000: the usual 55,000 / 5,000), the whole test file scores.
        /// </summary>
        private static StudyTask SequentialMnist(DirectoryInfo data)
        {
            var (train, trainLabels, validation, validationLabels, test, testLabels, _, columns) = SmnistCommand.LoadMnist(data, validationDivisor: 12);
            return new StudyTask("smnist", 128,
                (epochs, maxSteps) => new TrainingOptions
                {
                    Epochs = epochs, MaxStepsPerEpoch = maxSteps, BatchSize = 100,
                    Optimizer = OptimizerKind.Adam, LearningRate = 1e-3, LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1,
                },
                (recurrent, options, label) =>
                {
                    var model = new SequenceClassifierOptions { ClassCount = 10, FrameSize = columns, Recurrent = recurrent };
                    using var trained = ConsoleProgress.Run(label, progress => QuantizedSequenceClassifier.Train(train, trainLabels, validation, validationLabels, model, options, progress));
                    var report = TrainedModel.AsTrainedReport().Build(trained, test, testLabels);
                    return TrainedModel.Of(report, trained.Network.Recurrent.Layers[0], trained.SizeReport(), trained.History,
                        trained.Evaluate(test, testLabels).LogLoss, report.AsTrained.Metric);
                });
        }
    }

    private static int Run(StudyTask task, int epochs, int maxSteps, string cellName, int layers, int hidden, List<StudyConfiguration> grid, FileInfo results, bool retrain, DirectoryInfo checkpoints, FileInfo output)
    {
        if (epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {epochs}.");
        var cell = CellOption.Parse(cellName, "--cell");
        if (hidden == 0) hidden = task.DefaultHidden;
        var load = BenchmarkCommand.LoadAverage();
        var rows = Read(results);

        foreach (var configuration in grid)
        {
            rows = Read(results); // another study process may have written rows since
            var key = new StudyRow(task.Name, cellName, layers, hidden, epochs, maxSteps, configuration.Weights, configuration.Normalization,
                "", 0, 0, 0, 0, 0, 0, 0, 0, 0, "", "", null, configuration.Activations, configuration.Slope, SlopedGate: configuration.SlopedGate,
                Seed: configuration.Seed);
            int existing = rows.FindIndex(r => r.SameConfiguration(key));
            if (existing >= 0 && !retrain)
            {
                AnsiConsole.MarkupLine($"{Markup.Escape(Label(key))}: in {Markup.Escape(results.Name)} already, skipped.");
                continue;
            }
            var checkpoint = Path.Combine(checkpoints.FullName, CheckpointName(key));
            var row = TrainOne(key, task, configuration.Recurrent(cell, layers, hidden), load, checkpoint);
            results.Directory?.Create();
            // Read again before writing: a study running beside this one may have appended rows during the training, which
            // a rewrite from the rows read before it would drop.
            rows = Read(results);
            existing = rows.FindIndex(r => r.SameConfiguration(key));
            if (existing >= 0)
            {
                rows[existing] = row;
                Rewrite(results, rows);
            }
            else
            {
                rows.Add(row);
                File.AppendAllText(results.FullName, JsonSerializer.Serialize(row, Json) + "\n");
            }
            if (Directory.Exists(checkpoint)) Directory.Delete(checkpoint, recursive: true);
            BenchmarkCommand.WriteSection(output, Render(rows), SectionStart, SectionEnd);
            AnsiConsole.MarkupLine($"{Markup.Escape(Label(row))}: {Markup.Escape(row.Outcome)}, {MetricName(row.Task)} {Metric(row)}");
        }
        BenchmarkCommand.WriteSection(output, Render(rows), SectionStart, SectionEnd);
        foreach (var (figure, sweep) in SlopeSweeps(rows))
            HistogramPanelPlot.Save(sweep.Select(r => ($"slope {r.SlopeLabel}", r.Gates!)).ToArray(),
                Path.Combine(output.DirectoryName ?? ".", figure), "post-activation");
        foreach (var (figure, group) in WeightComparisons(rows))
            HistogramPanelPlot.Save(group.Select(r => (r.Weights, r.WeightHistograms!)).ToArray(),
                Path.Combine(output.DirectoryName ?? ".", figure), "float weight / its mean |w|");
        foreach (var (figure, group) in ActivationComparisons(rows))
            HistogramPanelPlot.Save(group.Select(r => (r.Activations, r.Gates!)).ToArray(),
                Path.Combine(output.DirectoryName ?? ".", figure), "post-activation");
        AnsiConsole.MarkupLine($"Rows in [blue]{Markup.Escape(results.FullName)}[/]; section written to [blue]{Markup.Escape(output.FullName)}[/].");
        return 0;
    }

    /// <summary>
    /// A row's checkpoint folder name, e.g. <c>char-lm-lstm1x256-5ep-twn-none-layer-1</c> (a retrained row resumes its own
    /// unfinished run; the seconds column then counts only this run's part).
    /// </summary>
    private static string CheckpointName(StudyRow key) =>
        $"{key.Task}-{key.Cell}{key.Layers}x{key.Hidden}-{key.Epochs}ep{(key.MaxSteps > 0 ? $"-{key.MaxSteps}steps" : "")}-{key.Weights}-" +
        $"{key.Activations.Replace(':', '-')}-{key.Normalization}-{key.SlopeLabel.Replace(' ', '-')}{(key.Seed == 1 ? "" : $"-seed{key.Seed}")}";

    private static StudyRow TrainOne(StudyRow key, StudyTask task, QuantizedRecurrentOptions recurrent, string? load, string checkpoint)
    {
        var training = task.Training(key.Epochs, key.MaxSteps);
        training.CheckpointDirectory = checkpoint;
        training.Seed = key.Seed;
        if (key.Normalization == RecalibratedBatch) training.BatchNormRecalibrationSteps = RecalibrationBatches;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var stamp = key with { Date = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), Machine = BenchmarkCommand.MachineDescription(), Load = load,
            Threads = TorchSharp.torch.get_num_threads() };
        try
        {
            var model = task.Train(recurrent, training, Label(key));
            var best = model.History.MinBy(h => h.ValidationLoss)!;
            return stamp with
            {
                Outcome = "trained", BestEpoch = best.Epoch, ValidationCrossEntropy = best.ValidationLoss,
                TestCrossEntropy = model.TestCrossEntropy, TestAccuracy = model.TestAccuracy, Gates = model.Gates, WeightHistograms = model.WeightHistograms,
                GradientNorms = model.History.Select(h => h.MeanGradientNorm).ToArray(), LargestGradientNorms = model.History.Select(h => h.MaxGradientNorm).ToArray(),
                TrainingLosses = model.History.Select(h => h.TrainingLoss).ToArray(), ValidationLosses = model.History.Select(h => h.ValidationLoss).ToArray(),
                BitsPerWeight = model.Size.QuantizedParameterCount > 0 ? model.Size.BitsPerQuantizedWeight : 32, PackedBytes = model.Size.PackedBytes,
                FloatLambda1 = model.Spectrum.FloatLambda1, QuantizedLambda1 = model.Spectrum.QuantizedLambda1, MeanGain = model.Spectrum.MeanGain,
                Seconds = clock.Elapsed.TotalSeconds,
            };
        }
        catch (TrainingDivergedException e)
        {
            return stamp with
            {
                Outcome = $"diverged (epoch {e.Epoch}, step {e.Step}, {e.Quantity} {e.Value.ToString("G3", CultureInfo.InvariantCulture)})", TestCrossEntropy = double.NaN, ValidationCrossEntropy = double.NaN,
                FloatLambda1 = double.NaN, QuantizedLambda1 = double.NaN, MeanGain = double.NaN, Seconds = clock.Elapsed.TotalSeconds,
            };
        }
    }

    private static string Render(List<StudyRow> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## The study grid: quantizers x normalizations x slopes, whole epochs (Hou et al. 2019, HitNet, converged tables)");
        sb.AppendLine();
        sb.AppendLine("Written by `dotnet run --project src/Microsoft.ML.Quantized.Samples -c Release -- study` runs with the options in " +
                      "each table's heading; the rows are appended to docs/reproduction-study.jsonl as they finish (date, machine and load " +
                      "of each row are there), so a table can grow over several sessions. char-lm: the embedded Moby Dick (90/5/5 by position), " +
                      "embedding 64, batch 32 x 100 characters, Adam 3e-3 (halved on a validation plateau), clip 1.0, test bits per character. " +
                      "word-lm: the Brown split, the PTB-small recipe (embedding = hidden, bptt 35, batch 20, SGD lr 20 (/4 on a plateau), " +
                      "clip 0.25, dropout 0.5), test perplexity. smnist: sequential MNIST row by row (28 steps of 28 pixels), the last hidden " +
                      "state into a 10-way float head, 55,000 training / the training file's last 5,000 for validation / 10,000 test " +
                      "images, batch 100, Adam 1e-3 (halved on a validation plateau), clip 1.0, test accuracy (\"vs float\" in percentage " +
                      "points). Seed 1 unless the slope column names another (`--seeds`); the best validation epoch is kept; the figures draw seed-1 rows. " +
                      $"Norm: batch = batch norm with one set of statistics per step, batch-shared = one set for all steps, {RecalibratedBatch} = per step with its running " +
                      $"statistics re-estimated over {RecalibrationBatches} training batches with the epoch's final weights before each validation. lambda_1: the largest singular " +
                      "value of layer 0's recurrent matrix W_hh, float (shadow) and as the cell uses it (quantized, then row-normalized under " +
                      "weight norm); gain: mean |g| of the hidden-side normalization (weight norm's row norms, layer or batch norm's gains). " +
                      "Activations: the activation quantizer on the gates and the hidden state (none = float; after a colon, the activations it " +
                      "quantizes when not those two: gates, hidden, cell for the LSTM cell state); slope: HitNet's lambda on every " +
                      "gate and the cell output. \"vs float\" divides by the float model without normalization, quantized activations or slope. " +
                      "Gradient norm: the global L2 norm of all gradients before clipping, mean over the first / the last epoch's steps (the " +
                      "largest of any step in brackets); \"-\" in rows trained before it was recorded.");
        foreach (var group in rows.GroupBy(r => (r.Task, r.Cell, r.Layers, r.Hidden, r.Epochs, r.MaxSteps)))
        {
            var (task, cell, layers, hidden, epochs, maxSteps) = group.Key;
            var floatRow = group.FirstOrDefault(r => r.Weights == "none" && r.Activations == "none" && r.Normalization == "none" && r.Slope == 1 && r.SlopedGate is null && r.Seed == 1 && r.Outcome == "trained");
            sb.AppendLine();
            sb.AppendLine($"**{task}, {cell.ToUpperInvariant()} {layers} x {hidden}, {epochs} epoch(s){(maxSteps > 0 ? $" of at most {maxSteps} steps (not converged)" : "")}** " +
                          $"(`--task {task} --cell {cell} --layers {layers} --hidden {hidden} --epochs {epochs}{(maxSteps > 0 ? $" --max-steps {maxSteps}" : "")}`)");
            sb.AppendLine();
            sb.AppendLine($"| weights | activations | norm | slope | outcome | best epoch | {MetricName(task)} | vs float | bits/weight | packed | lambda_1 float | lambda_1 quantized | gain | gradient norm |");
            sb.AppendLine("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var r in group)
            {
                bool trained = r.Outcome == "trained";
                string Cell(Func<string> value) => trained ? value() : "-";
                sb.AppendLine($"| {r.Weights} | {r.Activations} | {r.Normalization} | {r.SlopeLabel}{r.SeedLabel} | {r.Outcome} | {Cell(() => r.BestEpoch.ToString(CultureInfo.InvariantCulture))} | " +
                              $"{Cell(() => Metric(r))} | {Cell(() => floatRow is null ? "-" : VersusFloat(r, floatRow))} | " +
                              $"{Cell(() => r.BitsPerWeight >= 32 ? "32" : r.BitsPerWeight.ToString("F2", CultureInfo.InvariantCulture))} | {Cell(() => QuickstartCommand.Bytes(r.PackedBytes))} | " +
                              $"{Number(r.FloatLambda1)} | {Number(r.QuantizedLambda1)} | {Number(r.MeanGain)} | {GradientNorms(r)} |");
            }
        }
        AppendComparisons(sb, WeightComparisons(rows).ToList(),
            $"Weight distributions (HitNet Q1): layer 0's float (shadow) W_ih and W_hh after training, each over its own mean |w| " +
            $"({ShadowWeightHistograms.Bins} bins over [-{ShadowWeightHistograms.Range}, {ShadowWeightHistograms.Range}], the tails in the end bins; " +
            "TWN's and HitNet's ternary threshold is at 0.7 on this axis), one line per weight quantizer:",
            r => $"{r.Activations} activations", r => r.Weights);
        AppendComparisons(sb, ActivationComparisons(rows).ToList(),
            "Gate distributions by activation quantizer (HitNet Q1): layer 0's gate outputs on the test data before the activation " +
            "quantizer (20 bins over [0, 1] after a sigmoid, [-1, 1] after a tanh), one line per activation quantizer:",
            r => $"{r.Weights} weights", r => r.Activations);
        var sweeps = SlopeSweeps(rows).ToList();
        if (sweeps.Count > 0)
        {
            sb.AppendLine();
            sb.AppendLine("Slope sweeps (HitNet Q3): layer 0's gate outputs on the test data (20 bins over [0, 1] after a sigmoid, [-1, 1] after a tanh), one line per slope:");
            foreach (var (figure, sweep) in sweeps)
                sb.AppendLine($"- `{figure}`: {sweep[0].Task}, {sweep[0].Weights} weights, {sweep[0].Activations} activations, {sweep[0].Normalization} norm, " +
                              $"slopes {string.Join(", ", sweep.Select(r => r.SlopeLabel))}.");
        }
        return sb.ToString();
    }

    /// <summary>
    /// The trained rows with gate histograms that differ only in slope, two or more to a group, slopes descending, with the
    /// figure each is drawn in (<c>reproduction-study-slopes-{task}-{cell}{layers}x{hidden}-{epochs}ep-{weights}-{activations}-{norm}.png</c>):
    /// slopes on every gate in one group, and for each gate sloped alone a group of its rows with the slope-1 row
    /// (<c>...-{norm}-{gate}.png</c>).
    /// </summary>
    private static IEnumerable<(string Figure, List<StudyRow> Rows)> SlopeSweeps(List<StudyRow> rows) =>
        rows.Where(r => r.Outcome == "trained" && r.Seed == 1 && r.Gates is { Count: > 0 })
            .GroupBy(r => (r.Task, r.Cell, r.Layers, r.Hidden, r.Epochs, r.MaxSteps, r.Weights, r.Activations, r.Normalization))
            .SelectMany(g => g.Select(r => r.SlopedGate).Distinct().Select(gate => (g.Key, Gate: gate,
                Rows: g.Where(r => r.SlopedGate == gate || (r.SlopedGate is null && r.Slope == 1)).OrderByDescending(r => r.Slope).ToList())))
            .Where(s => s.Rows.Select(r => r.Slope).Distinct().Count() > 1)
            .Select(s => ($"reproduction-study-slopes-{s.Key.Task}-{s.Key.Cell}{s.Key.Layers}x{s.Key.Hidden}-{s.Key.Epochs}ep" +
                          $"{(s.Key.MaxSteps > 0 ? $"-{s.Key.MaxSteps}steps" : "")}-{s.Key.Weights}-{s.Key.Activations.Replace(':', '-')}-{s.Key.Normalization}" +
                          $"{(s.Gate is null ? "" : "-" + s.Gate)}.png", s.Rows));

    /// <summary>A paragraph naming each comparison figure, its group's fixed quantizer and the lines it draws (nothing without figures).</summary>
    private static void AppendComparisons(StringBuilder sb, List<(string Figure, List<StudyRow> Rows)> comparisons, string intro,
        Func<StudyRow, string> fixedQuantizer, Func<StudyRow, string> line)
    {
        if (comparisons.Count == 0) return;
        sb.AppendLine();
        sb.AppendLine(intro);
        foreach (var (figure, group) in comparisons)
            sb.AppendLine($"- `{figure}`: {group[0].Task}, {fixedQuantizer(group[0])}, {group[0].Normalization} norm, slope 1: {string.Join(", ", group.Select(line))}.");
    }

    /// <summary>
    /// The trained rows with weight histograms that differ only in their weight quantizer (slope 1 on every gate), two or more
    /// to a group, with the figure each is drawn in
    /// (<c>reproduction-study-weights-{task}-{cell}{layers}x{hidden}-{epochs}ep-{activations}-{norm}.png</c>).
    /// </summary>
    private static IEnumerable<(string Figure, List<StudyRow> Rows)> WeightComparisons(List<StudyRow> rows) =>
        Comparisons(rows, "weights", r => r.WeightHistograms, r => r.Weights, r => r.Activations);

    /// <summary>
    /// The trained rows with gate histograms that differ only in their activation quantizer (slope 1 on every gate), two or
    /// more to a group, with the figure each is drawn in
    /// (<c>reproduction-study-activations-{task}-{cell}{layers}x{hidden}-{epochs}ep-{weights}-{norm}.png</c>).
    /// </summary>
    private static IEnumerable<(string Figure, List<StudyRow> Rows)> ActivationComparisons(List<StudyRow> rows) =>
        Comparisons(rows, "activations", r => r.Gates, r => r.Activations, r => r.Weights);

    /// <summary>Groups of two or more trained slope-1 rows with <paramref name="histograms"/> that differ only in <paramref name="varying"/>.</summary>
    private static IEnumerable<(string Figure, List<StudyRow> Rows)> Comparisons(List<StudyRow> rows, string kind,
        Func<StudyRow, IReadOnlyDictionary<string, ValueHistogram>?> histograms, Func<StudyRow, string> varying, Func<StudyRow, string> fixedQuantizer) =>
        rows.Where(r => r.Outcome == "trained" && r.Seed == 1 && histograms(r) is { Count: > 0 } && r.Slope == 1 && r.SlopedGate is null)
            .GroupBy(r => (r.Task, r.Cell, r.Layers, r.Hidden, r.Epochs, r.MaxSteps, Fixed: fixedQuantizer(r), r.Normalization))
            .Where(g => g.Select(varying).Distinct().Count() > 1)
            .Select(g => ($"reproduction-study-{kind}-{g.Key.Task}-{g.Key.Cell}{g.Key.Layers}x{g.Key.Hidden}-{g.Key.Epochs}ep" +
                          $"{(g.Key.MaxSteps > 0 ? $"-{g.Key.MaxSteps}steps" : "")}-{g.Key.Fixed.Replace(':', '-')}-{g.Key.Normalization}.png", g.ToList()));

    /// <summary>
    /// The gradient-norm cell: the first and last epochs' mean norm before clipping and, in brackets, the largest of any step
    /// (e.g. <c>1.52 / 0.61 (8.30)</c>); "-" for rows from before they were recorded.
    /// </summary>
    private static string GradientNorms(StudyRow r) => r.GradientNorms is { Count: > 0 } means && r.LargestGradientNorms is { Count: > 0 } largest
        ? $"{Norm(means[0])} / {Norm(means[^1])} ({Norm(largest.Max())})"
        : "-";

    /// <summary>A gradient norm: two decimals, or in exponent form from 10,000 up (an exploding gradient reads e.g. <c>1.24E+28</c>).</summary>
    private static string Norm(double value) => value >= 1e4 ? value.ToString("0.00E+0", CultureInfo.InvariantCulture) : Number(value);

    /// <summary>The heading of a task's test figure.</summary>
    private static string MetricName(string task) => task switch
    {
        "char-lm" => "test BPC",
        "word-lm" => "test ppl",
        _ => "test accuracy",
    };

    /// <summary>A row's test figure as its table shows it: bits per character, perplexity or accuracy; "-" for a diverged row.</summary>
    private static string Metric(StudyRow row) => double.IsNaN(row.TestCrossEntropy) ? "-" : row.TestAccuracy is double accuracy
        ? (100 * accuracy).ToString("F2", CultureInfo.InvariantCulture) + " %"
        : Shown(row).ToString(row.Task == "char-lm" ? "F3" : "F1", CultureInfo.InvariantCulture);

    /// <summary>
    /// The "vs float" cell: a language model's figure over the float row's (e.g. <c>1.050</c>), a classifier's accuracy minus
    /// the float row's in percentage points (e.g. <c>-0.42 pt</c>).
    /// </summary>
    private static string VersusFloat(StudyRow row, StudyRow floatRow) => row.TestAccuracy is double accuracy && floatRow.TestAccuracy is double floatAccuracy
        ? (100 * (accuracy - floatAccuracy)).ToString("+0.00;-0.00;0.00", CultureInfo.InvariantCulture) + " pt"
        : (Shown(row) / Shown(floatRow)).ToString("F3", CultureInfo.InvariantCulture);

    /// <summary>A language model's test cross-entropy as bits per character (char-lm) or perplexity (word-lm).</summary>
    private static double Shown(StudyRow row) => row.Task == "char-lm" ? row.TestCrossEntropy / Math.Log(2) : Math.Exp(row.TestCrossEntropy);

    private static string Number(double value) => double.IsNaN(value) ? "-" : value.ToString("F2", CultureInfo.InvariantCulture);

    private static string Label(StudyRow r)
        => $"{r.Task} {r.Cell} {r.Layers}x{r.Hidden} {r.Weights} weights, {r.Activations} activations, {r.Normalization} norm, slope {r.SlopeLabel}{r.SeedLabel}";

    private static List<StudyRow> Read(FileInfo results)
        => File.Exists(results.FullName) // not FileInfo.Exists, which keeps what it saw first
            ? File.ReadLines(results.FullName).Where(l => l.Length > 0).Select(l => JsonSerializer.Deserialize<StudyRow>(l, Json)
                ?? throw new InvalidDataException($"{results.FullName}: a line is not a study row: '{l}'.")).ToList()
            : new List<StudyRow>();

    /// <summary>Writes every row to <paramref name="results"/> through a temporary file, so an interruption loses no row.</summary>
    private static void Rewrite(FileInfo results, List<StudyRow> rows)
    {
        string temporary = results.FullName + ".tmp";
        File.WriteAllLines(temporary, rows.Select(r => JsonSerializer.Serialize(r, Json)));
        File.Move(temporary, results.FullName, overwrite: true);
    }

    /// <summary>The <c>--norms</c> name of per-step batch norm recalibrated before each validation over <see cref="RecalibrationBatches"/> training batches.</summary>
    private const string RecalibratedBatch = "batch-recal";

    /// <summary>Training batches a <see cref="RecalibratedBatch"/> row re-estimates its statistics over before each validation.</summary>
    private const int RecalibrationBatches = 100;

    /// <summary>A normalization's study name (none, weight, layer, batch, batch-shared, batch-recal); <paramref name="option"/> names the option in the error.</summary>
    internal static RecurrentNormalization ParseNormalization(string name, string option = "--norms") => name switch
    {
        "none" => RecurrentNormalization.None,
        "weight" => RecurrentNormalization.Weight,
        "layer" => RecurrentNormalization.Layer,
        "batch" => RecurrentNormalization.BatchPerStep,
        "batch-shared" => RecurrentNormalization.BatchShared,
        RecalibratedBatch => RecurrentNormalization.BatchPerStep,
        _ => throw new ArgumentException($"{option}: unknown normalization '{name}' (none, weight, layer, batch, batch-shared, {RecalibratedBatch})."),
    };
}
