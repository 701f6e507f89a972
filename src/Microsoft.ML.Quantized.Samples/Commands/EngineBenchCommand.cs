using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<long>;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// The scoring benchmark of issue 12: the managed engine over packed weights vs the TorchSharp float forward vs the
/// TorchSharp forward of the same quantized model (weights quantized on every forward, as training does) vs ONNX Runtime on
/// the model's float and QDQ ONNX exports (<see cref="PackedModel.ExportToOnnx(Stream, OnnxExportOptions?)"/>), for LSTM and GRU
/// word LMs (vocabulary 10k, embedding = hidden, TWN + weight norm, randomly initialized: speed does not depend on the
/// weights' values) at several hidden sizes, streaming one token at a time (batch 1) and 64 streams; a binary GRU
/// classifier on token keys (ternary, quantized embedding) through ML.NET's PredictionEngine and through the engine
/// directly; model bytes on disk, bits per recurrent weight including scales, load times, and the peak working set of a
/// child process that only loads the saved ML.NET zip and scores. Writes the <c>bench:engine</c> section of
/// docs/benchmarks.md.
/// </summary>
internal static class EngineBenchCommand
{
    private const string SectionStart = "<!-- bench:engine -->";
    private const string SectionEnd = "<!-- /bench:engine -->";
    private const int Vocabulary = 10_000;
    private const int Streams = 64;
    private const int ClassifierRowTokens = 20;
    private const int OnnxWindow = 32;
    private static readonly CultureInfo Invariant = CultureInfo.InvariantCulture;

    public static System.CommandLine.Command Create()
    {
        var hidden = new System.CommandLine.Option<string>("--hidden") { Description = "Comma-separated hidden sizes.", DefaultValueFactory = _ => "128,256,512" };
        var cells = new System.CommandLine.Option<string>("--cells") { Description = "Comma-separated cells: lstm, gru.", DefaultValueFactory = _ => "lstm,gru" };
        var seconds = new System.CommandLine.Option<double>("--seconds") { Description = "Seconds per measurement (after a warm-up; median of 3 rounds).", DefaultValueFactory = _ => 2.0 };
        var output = new System.CommandLine.Option<FileInfo>("--out") { Description = "Markdown file to write (its engine section is replaced).", DefaultValueFactory = _ => new FileInfo("docs/benchmarks.md") };
        var child = new System.CommandLine.Option<FileInfo?>("--score-child") { Description = "Internal: score with this ML.NET zip only and print the peak working set.", Hidden = true };
        var command = new System.CommandLine.Command("engine-bench",
            "Scoring speed and size: managed engine vs TorchSharp float and quantized forward, LSTM/GRU LMs, batch 1 and 64, a GRU classifier through PredictionEngine.")
        {
            hidden, cells, seconds, output, child,
        };
        command.SetAction(parse => parse.GetValue(child) is { } zip
            ? ScoreChild(zip)
            : Run(OptionList.Split(parse.GetValue(hidden)!).Select(int.Parse).ToList(), CellOption.ParseList(parse.GetValue(cells)!, "--cells"), parse.GetValue(seconds), parse.GetValue(output)!));
        return command;
    }

    private static int Run(List<int> hiddenSizes, List<RecurrentCellKind> cells, double seconds, FileInfo output)
    {
        if (hiddenSizes.Count == 0 || hiddenSizes.Any(h => h < 1)) throw new ArgumentException("--hidden: give one or more positive sizes.");
        if (!(seconds > 0)) throw new ArgumentException($"--seconds must be positive; got {seconds}.");
        var load = BenchmarkCommand.LoadAverage();
        int defaultThreads = torch.get_num_threads();
        var lmRows = new List<LmRow>();
        foreach (var cell in cells)
            foreach (int h in hiddenSizes)
            {
                AnsiConsole.MarkupLine($"[bold]{cell} 1 x {h}[/], vocabulary {Vocabulary:N0}, embedding {h}");
                lmRows.Add(MeasureLanguageModel(cell, h, seconds, defaultThreads));
            }
        var classifierRows = new List<ClassifierRow>();
        foreach (int h in hiddenSizes)
        {
            AnsiConsole.MarkupLine($"[bold]GRU classifier 1 x {h}[/] (ternary, quantized embedding) through ML.NET");
            classifierRows.Add(MeasureClassifier(h, seconds));
        }
        torch.set_num_threads(defaultThreads);
        var markdown = Render(lmRows, classifierRows, seconds, defaultThreads, load);
        BenchmarkCommand.WriteSection(output, markdown, SectionStart, SectionEnd);
        Console.WriteLine(markdown);
        AnsiConsole.MarkupLine($"Wrote the engine section of {output.FullName}.");
        return 0;
    }

    // ---------------------------------------------------------------- language models

    private sealed record LmRow(
        RecurrentCellKind Cell, int Hidden,
        double EngineStep, double EngineRecurrent, double EngineReference, double EngineFloat, double OnnxFloat1, double OnnxQdq1,
        double TorchFloat1, double TorchFloatDefault, double TorchQuantized1, double TorchFloatRecurrent1, double StockTorch1,
        double EngineStreams1, double EngineStreamsThreads, double TorchFloat64x1, double TorchFloat64Default, double TorchQuantized64x1, double StockTorch64x1,
        long PackedStreamBytes, long SizeReportPackedBytes, long Float32Bytes, double LoadMilliseconds,
        double RecurrentBits, double RecurrentBitsWithHeaders, double PerTensorRecurrentBits);

    /// <summary>The token stream <paramref name="stream"/> reads in round <paramref name="round"/>: the streams read one random sequence at offsets 97 apart.</summary>
    private static int StreamToken(int[] tokens, int round, int stream) => tokens[(round + 97 * stream) & 8191];

    private static LanguageModelOptions LmOptions(RecurrentCellKind cell, int hidden, QuantizerKind quantizer, RecurrentNormalization normalization, bool quantizeOuter) => new()
    {
        EmbeddingSize = hidden,
        QuantizeEmbeddingAndDecoder = quantizeOuter,
        Recurrent = new QuantizedRecurrentOptions
        {
            Cell = cell, HiddenSize = hidden,
            WeightQuantizer = new QuantizerOptions { Kind = quantizer },
            Normalization = normalization,
        },
    };

    private static LanguageModelNetwork NewNetwork(LanguageModelOptions options)
    {
        using var random = TrainingRandom.Use(1);
        var network = new LanguageModelNetwork(Vocabulary, options);
        network.eval();
        return network;
    }

    private static LmRow MeasureLanguageModel(RecurrentCellKind cell, int hidden, double seconds, int defaultThreads)
    {
        var tokens = RandomTokens(8192, Vocabulary, seed: hidden);
        using var quantized = NewNetwork(LmOptions(cell, hidden, QuantizerKind.TernaryWeightNet, RecurrentNormalization.Weight, quantizeOuter: true));
        using var floating = NewNetwork(LmOptions(cell, hidden, QuantizerKind.None, RecurrentNormalization.None, quantizeOuter: false));
        var packed = PackedModelEncoder.Encode(quantized);
        var packedFloat = PackedModelEncoder.Encode(floating);
        var size = PackedModelEncoder.SizeReport(quantized, quantized.WeightMatrices());

        // Sizes: the packed stream, its load time, bits per recurrent weight (codes + per-row scales; and with the 20-byte
        // matrix headers), and the same for per-tensor TWN without weight norm (one scale per matrix).
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true)) packed.Write(writer);
        var file = Path.Combine(Path.GetTempPath(), $"engine-bench-{Environment.ProcessId}-{cell}-{hidden}.qplm");
        File.WriteAllBytes(file, stream.ToArray());
        double loadMs = BenchmarkCommand.Median(Enumerable.Range(0, 5).Select(_ =>
        {
            var sw = Stopwatch.StartNew();
            using var reader = new BinaryReader(File.OpenRead(file));
            GC.KeepAlive(PackedLanguageModelNetwork.Read(reader));
            return sw.Elapsed.TotalMilliseconds;
        }));
        File.Delete(file);
        var (bits, bitsWithHeaders) = RecurrentBits(packed.Recurrent);
        double perTensorBits;
        using (var perTensor = NewNetwork(LmOptions(cell, hidden, QuantizerKind.TernaryWeightNet, RecurrentNormalization.None, quantizeOuter: true)))
            perTensorBits = RecurrentBits(PackedModelEncoder.Encode(perTensor.Recurrent)).Bits;

        // Managed engine, batch 1: LanguageModelScorer.Step (embedding row -> stack -> 10k-way decoder logits).
        var logits = new float[Vocabulary];
        var scorer = new LanguageModelScorer(packed);
        int position = 0;
        double engineStep = Rate("engine step (SIMD)", () => scorer.Step(tokens[position++ & 8191], logits), 1, seconds);
        var reference = new LanguageModelScorer(packed, ScoringKernels.Reference);
        double engineReference = Rate("engine step (reference kernels)", () => reference.Step(tokens[position++ & 8191], logits), 1, seconds);
        var floatScorer = new LanguageModelScorer(packedFloat);
        double engineFloat = Rate("engine step, float model", () => floatScorer.Step(tokens[position++ & 8191], logits), 1, seconds);
        // The recurrent part only (embedding row + stack, no decoder): what a features/classifier stream pays per token.
        var embedded = new float[packed.Embedding.Columns];
        var state = packed.Recurrent.CreateState(ScoringKernels.Simd);
        double engineRecurrent = Rate("engine embedding + stack", () =>
        {
            packed.Embedding.DecodeRow(tokens[position++ & 8191], embedded);
            packed.Recurrent.Step(embedded, state);
        }, 1, seconds);

        // ONNX Runtime on the quantized model's exports, batch 1, one thread: the export reads a window of tokens from the zero
        // state (no state in or out), so each run reads OnnxWindow tokens and gives the logits after each, the engine's work per token.
        double onnxFloat = OnnxRate("ONNX Runtime, float export, batch 1, 1 thread", packed, OnnxWeightFormat.Float, tokens, seconds);
        double onnxQdq = OnnxRate("ONNX Runtime, QDQ export, batch 1, 1 thread", packed, OnnxWeightFormat.QuantizeDequantize, tokens, seconds);

        // Managed engine, 64 streams: there is no batched path; 64 scorers (one state each, shared weights) each read one
        // token per round, on one thread, and split over all cores (one thread per core, 64 / cores streams each).
        var scorers = Enumerable.Range(0, Streams).Select(_ => new LanguageModelScorer(packed)).ToArray();
        var logitsPerStream = Enumerable.Range(0, Streams).Select(_ => new float[Vocabulary]).ToArray();
        double streams1 = Rate("engine 64 streams, 1 thread", () =>
        {
            int p = position++;
            for (int s = 0; s < Streams; s++) scorers[s].Step(StreamToken(tokens, p, s), logitsPerStream[s]);
        }, Streams, seconds);
        int cores = Environment.ProcessorCount;
        double streamsThreads = Rate($"engine 64 streams, {cores} threads", () =>
        {
            int p = position++;
            Parallel.For(0, cores, new ParallelOptions { MaxDegreeOfParallelism = cores }, part =>
            {
                for (int s = part; s < Streams; s += cores) scorers[s].Step(StreamToken(tokens, p, s), logitsPerStream[s]);
            });
        }, Streams, seconds);

        // TorchSharp forwards under no_grad + eval, state carried, one token per stream per call.
        torch.set_num_threads(1);
        double torchFloat1 = TorchRate("torch float, batch 1, 1 thread", floating, tokens, 1, seconds);
        double torchFloatRecurrent1 = TorchRecurrentRate("torch float embedding + stack, batch 1, 1 thread", floating, tokens, seconds);
        double torchQuantized1 = TorchRate("torch quantized, batch 1, 1 thread", quantized, tokens, 1, seconds);
        double torchFloat64 = TorchRate("torch float, batch 64, 1 thread", floating, tokens, Streams, seconds);
        double stock1 = StockTorchRate("stock TorchSharp modules, batch 1, 1 thread", cell, hidden, tokens, 1, seconds);
        double stock64 = StockTorchRate("stock TorchSharp modules, batch 64, 1 thread", cell, hidden, tokens, Streams, seconds);
        double torchQuantized64 = TorchRate("torch quantized, batch 64, 1 thread", quantized, tokens, Streams, seconds);
        torch.set_num_threads(defaultThreads);
        double torchFloatDefault = TorchRate($"torch float, batch 1, {defaultThreads} threads", floating, tokens, 1, seconds);
        double torchFloat64Default = TorchRate($"torch float, batch 64, {defaultThreads} threads", floating, tokens, Streams, seconds);
        torch.set_num_threads(1);

        return new LmRow(cell, hidden, engineStep, engineRecurrent, engineReference, engineFloat, onnxFloat, onnxQdq,
            torchFloat1, torchFloatDefault, torchQuantized1, torchFloatRecurrent1, stock1,
            streams1, streamsThreads, torchFloat64, torchFloat64Default, torchQuantized64, stock64,
            stream.Length, size.PackedBytes, size.Float32Bytes, loadMs, bits, bitsWithHeaders, perTensorBits);
    }

    /// <summary>
    /// Tokens/s of ONNX Runtime (default optimizations, one intra-op thread) on <paramref name="model"/>'s ONNX export in
    /// <paramref name="format"/>: runs on [1, <see cref="OnnxWindow"/>] token windows, logits after every token.
    /// </summary>
    private static double OnnxRate(string what, PackedLanguageModelNetwork model, OnnxWeightFormat format, int[] tokens, double seconds)
    {
        using var onnx = new MemoryStream();
        OnnxExport.Write(model, new OnnxExportOptions { WeightFormat = format }, onnx);
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var session = new InferenceSession(onnx.ToArray(), options);
        var window = new DenseTensor([1, OnnxWindow]);
        var inputs = new[] { NamedOnnxValue.CreateFromTensor("tokens", window) };
        int position = 0;
        return Rate(what, () =>
        {
            for (int t = 0; t < OnnxWindow; t++) window[0, t] = tokens[position++ & 8191];
            using var results = session.Run(inputs);
        }, OnnxWindow, seconds);
    }

    /// <summary>Bits per recurrent weight on disk: (codes + scales) and (codes + scales + matrix headers) over the weight count.</summary>
    private static (double Bits, double WithHeaders) RecurrentBits(PackedRecurrentStack stack)
    {
        long weights = 0, payload = 0, total = 0;
        foreach (var layer in stack.Layers)
            foreach (var matrix in new[] { layer.Input.Weight, layer.Hidden.Weight })
            {
                weights += matrix.WeightCount;
                payload += matrix.PayloadBytes;
                total += matrix.SizeInBytes;
            }
        return (8.0 * payload / weights, 8.0 * total / weights);
    }

    /// <summary>Tokens/s of <see cref="LanguageModelNetwork.Forward"/> on [1, batch] token tensors, the state carried from call to call.</summary>
    private static double TorchRate(string what, LanguageModelNetwork network, int[] tokens, int batch, double seconds)
    {
        using var noGrad = torch.no_grad();
        network.eval();
        RecurrentState? state = null;
        int position = 0;
        var ids = new long[batch];
        try
        {
            return Rate(what, () =>
            {
                using var scope = torch.NewDisposeScope();
                int p = position++;
                for (int s = 0; s < batch; s++) ids[s] = StreamToken(tokens, p, s);
                var input = torch.tensor(ids).reshape(1, batch);
                var (logits, next) = network.Forward(input, state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
            }, batch, seconds);
        }
        finally
        {
            state?.Dispose();
        }
    }

    /// <summary>
    /// Tokens/s of what a TorchSharp user would write for the float model: stock <c>nn.Embedding</c>, <c>nn.LSTM</c> /
    /// <c>nn.GRU</c> and <c>nn.Linear</c> modules (random weights, same sizes) under <c>no_grad</c> + <c>eval()</c>, state carried.
    /// </summary>
    private static double StockTorchRate(string what, RecurrentCellKind cell, int hidden, int[] tokens, int batch, double seconds)
    {
        using var noGrad = torch.no_grad();
        using var random = TrainingRandom.Use(1);
        using var embedding = nn.Embedding(Vocabulary, hidden);
        using var lstm = cell == RecurrentCellKind.Lstm ? nn.LSTM(hidden, hidden) : null;
        using var gru = cell == RecurrentCellKind.Gru ? nn.GRU(hidden, hidden) : null;
        using var decoder = nn.Linear(hidden, Vocabulary);
        embedding.eval();
        lstm?.eval();
        gru?.eval();
        decoder.eval();
        Tensor h = torch.zeros(1, batch, hidden), c = torch.zeros(1, batch, hidden);
        int position = 0;
        var ids = new long[batch];
        try
        {
            return Rate(what, () =>
            {
                using var scope = torch.NewDisposeScope();
                int p = position++;
                for (int s = 0; s < batch; s++) ids[s] = StreamToken(tokens, p, s);
                var x = embedding.forward(torch.tensor(ids).reshape(1, batch));
                Tensor y, hNext, cNext = c;
                if (lstm is not null) (y, hNext, cNext) = lstm.forward(x, (h, c));
                else (y, hNext) = gru!.forward(x, h);
                _ = decoder.forward(y);
                if (!ReferenceEquals(hNext, h)) { h.Dispose(); h = hNext.DetachFromDisposeScope(); }
                if (!ReferenceEquals(cNext, c)) { c.Dispose(); c = cNext.DetachFromDisposeScope(); }
            }, batch, seconds);
        }
        finally
        {
            h.Dispose();
            c.Dispose();
        }
    }

    /// <summary>Tokens/s of the float network's embedding lookup + recurrent stack only (no decoder), batch 1, state carried.</summary>
    private static double TorchRecurrentRate(string what, LanguageModelNetwork network, int[] tokens, double seconds)
    {
        using var noGrad = torch.no_grad();
        network.eval();
        var (table, _) = network.Embedding;
        RecurrentState? state = null;
        int position = 0;
        try
        {
            return Rate(what, () =>
            {
                using var scope = torch.NewDisposeScope();
                var input = torch.tensor(new long[] { tokens[position++ & 8191] });
                var embedded = table.index_select(0, input).reshape(1, 1, -1);
                var (_, next) = network.Recurrent.Forward(embedded, state);
                state?.Dispose();
                state = next.DetachFromDisposeScope();
            }, 1, seconds);
        }
        finally
        {
            state?.Dispose();
        }
    }

    // ---------------------------------------------------------------- classifier through ML.NET

    private sealed record ClassifierRow(int Hidden, double PredictionEngineRows, double EngineRows, long ZipBytes, long ComponentBytes, long ModelFolderBytes, long PackedStreamBytes,
        long SizeReportPackedBytes, double BitsPerQuantizedWeight, double FirstLoadMilliseconds, double LoadMilliseconds,
        double ChildPeakMegabytes, string ChildNote);

    public sealed class Review
    {
        public string Text { get; set; } = "";
        public bool Label { get; set; }
    }

    public sealed class Prediction
    {
        public bool PredictedLabel { get; set; }
        public float Probability { get; set; }
    }

    private static Review[] RandomReviews(int count, int seed)
    {
        var random = new Random(seed);
        var rows = new Review[count];
        var words = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            words.Clear();
            int positives = 0;
            for (int t = 0; t < ClassifierRowTokens; t++)
            {
                // Roughly Zipf-distributed word ids over the 10k vocabulary, so most words recur.
                int id = (int)Math.Min(Vocabulary - 1, Math.Floor(Math.Pow(Vocabulary, random.NextDouble())));
                if (id % 7 == 0) positives++;
                words.Append(t == 0 ? "" : " ").Append('w').Append(id.ToString(Invariant));
            }
            rows[i] = new Review { Text = words.ToString(), Label = positives >= 3 };
        }
        return rows;
    }

    private static ClassifierRow MeasureClassifier(int hidden, double seconds)
    {
        var ml = new MLContext(seed: 1);
        var train = ml.Data.LoadFromEnumerable(RandomReviews(2000, seed: 1));
        var options = new SequenceClassifierTrainerOptions
        {
            FeatureColumnName = "Tokens",
            Model = new SequenceClassifierOptions
            {
                QuantizeEmbeddingAndHead = true,
                Recurrent = new QuantizedRecurrentOptions
                {
                    Cell = RecurrentCellKind.Gru, HiddenSize = hidden,
                    WeightQuantizer = new QuantizerOptions { Kind = QuantizerKind.TernaryWeightNet },
                    Normalization = RecurrentNormalization.Weight,
                },
            },
            // A few steps: the speed and the size do not depend on how well it is trained.
            Training = new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 10, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 3e-3 },
        };
        var pipeline = ml.Transforms.Text.TokenizeIntoWords("Tokens", nameof(Review.Text))
            .Append(ml.Transforms.Conversion.MapValueToKey("Tokens"))
            .Append(ml.BinaryClassification.Trainers.QuantizedGru(options));
        var model = pipeline.Fit(train);
        var parameters = model.LastTransformer.Model;
        var size = parameters.SizeReport();
        var packedStream = new MemoryStream();
        using (var writer = new BinaryWriter(packedStream, Encoding.UTF8, leaveOpen: true)) parameters.Parts.Packed.Network.Write(writer);

        var zip = Path.Combine(Path.GetTempPath(), $"engine-bench-{Environment.ProcessId}-gru-{hidden}.zip");
        ml.Model.Save(model, train.Schema, zip);
        long zipBytes = new FileInfo(zip).Length;
        // The classifier's own part of the zip: the transform folder that holds the packed classifier (its model folder: the
        // packed stream, a JSON description, the token key map; and ML.NET's TrainSchema and Model.key beside it).
        long componentBytes = 0, modelFolderBytes = 0;
        using (var archive = System.IO.Compression.ZipFile.OpenRead(zip))
        {
            var packedEntry = archive.Entries.First(e => e.FullName.EndsWith("/Model/PackedSequenceClassifier.bin", StringComparison.Ordinal)).FullName;
            var component = packedEntry[..(packedEntry.Length - "Model/PackedSequenceClassifier.bin".Length)];
            foreach (var entry in archive.Entries)
            {
                if (!entry.FullName.StartsWith(component, StringComparison.Ordinal)) continue;
                componentBytes += entry.CompressedLength;
                if (entry.FullName.StartsWith(component + "Model/", StringComparison.Ordinal)) modelFolderBytes += entry.CompressedLength;
            }
        }
        var times = new List<double>();
        ITransformer? loaded = null;
        for (int i = 0; i < 6; i++)
        {
            var sw = Stopwatch.StartNew();
            loaded = new MLContext(seed: 1).Model.Load(zip, out _);
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        double firstLoad = times[0];
        double load = BenchmarkCommand.Median(times.Skip(1));

        var rows = RandomReviews(1024, seed: 2);
        var engine = ml.Model.CreatePredictionEngine<Review, Prediction>(loaded!);
        int position = 0;
        double predictionEngineRows = Rate("PredictionEngine rows (20 words)", () => engine.Predict(rows[position++ & 1023]), 1, seconds);
        var packed = parameters.Parts.Packed.Network;
        var scorer = new SequenceClassifierScorer(packed);
        var ids = Enumerable.Range(0, 1024).Select(i => RandomTokens(ClassifierRowTokens, packed.InputSize, seed: i)).ToArray();
        var probabilities = new float[packed.ClassCount];
        double engineRows = Rate("engine rows (20 ids)", () => scorer.Predict(ids[position++ & 1023], probabilities), 1, seconds);

        var (peak, note) = RunScoreChild(zip);
        File.Delete(zip);
        parameters.Dispose();
        return new ClassifierRow(hidden, predictionEngineRows, engineRows, zipBytes, componentBytes, modelFolderBytes, packedStream.Length, size.PackedBytes, size.BitsPerQuantizedWeight,
            firstLoad, load, peak, note);
    }

    /// <summary>Runs this program again with <c>--score-child</c> and reads the peak working set it reports.</summary>
    private static (double Megabytes, string Note) RunScoreChild(string zip)
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var start = new ProcessStartInfo(process) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            start.ArgumentList.Add(typeof(EngineBenchCommand).Assembly.Location);
        start.ArgumentList.Add("engine-bench");
        start.ArgumentList.Add("--score-child");
        start.ArgumentList.Add(zip);
        using var child = Process.Start(start)!;
        var stdout = child.StandardOutput.ReadToEnd();
        var stderr = child.StandardError.ReadToEnd();
        child.WaitForExit();
        var line = stdout.Split('\n').FirstOrDefault(l => l.StartsWith("child:", StringComparison.Ordinal));
        if (child.ExitCode != 0 || line is null)
        {
            AnsiConsole.MarkupLine($"[red]score child failed[/] ({child.ExitCode}): {Markup.Escape(stderr.Trim())}");
            return (double.NaN, "child failed");
        }
        // "child: VmHWM_KB=N torchsharp=False libtorch=False rows=N"
        var fields = line["child:".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=')).ToDictionary(f => f[0], f => f[1]);
        double mb = long.Parse(fields["VmHWM_KB"], Invariant) / 1024.0;
        AnsiConsole.MarkupLine($"  score-only child: peak working set {mb:F1} MiB, TorchSharp loaded {fields["torchsharp"]}, libtorch mapped {fields["libtorch"]}");
        return (mb, $"TorchSharp loaded: {fields["torchsharp"]}, libtorch mapped: {fields["libtorch"]}");
    }

    /// <summary>The child: load the zip, score 2,000 rows through a PredictionEngine, print VmHWM and whether torch got in.</summary>
    private static int ScoreChild(FileInfo zip)
    {
        var ml = new MLContext(seed: 1);
        var model = ml.Model.Load(zip.FullName, out _);
        var engine = ml.Model.CreatePredictionEngine<Review, Prediction>(model);
        var rows = RandomReviews(2000, seed: 3);
        int positive = 0;
        foreach (var row in rows) positive += engine.Predict(row).PredictedLabel ? 1 : 0;
        bool libtorch = File.Exists("/proc/self/maps") && File.ReadLines("/proc/self/maps").Any(l => l.Contains("libtorch", StringComparison.OrdinalIgnoreCase));
        bool torchSharp = AppDomain.CurrentDomain.GetAssemblies().Any(a => a.GetName().Name == "TorchSharp");
        var hwm = ((File.Exists("/proc/self/status") ? ResidentMemory.PeakBytes : Environment.WorkingSet) / 1024).ToString(Invariant);
        Console.WriteLine($"child: VmHWM_KB={hwm} torchsharp={torchSharp} libtorch={libtorch} rows={rows.Length} positive={positive}");
        return 0;
    }

    // ---------------------------------------------------------------- measuring

    private static int[] RandomTokens(int count, int vocabulary, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(vocabulary)).ToArray();
    }

    /// <summary>
    /// Items per second of <paramref name="step"/> (each call does <paramref name="itemsPerCall"/> items): a warm-up of
    /// half of <paramref name="seconds"/> (at most 1 s, at least 3 calls), then three rounds of a third of
    /// <paramref name="seconds"/> each; the median round.
    /// </summary>
    private static double Rate(string what, Action step, int itemsPerCall, double seconds)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 3 || sw.Elapsed.TotalSeconds < Math.Min(1.0, seconds / 2); i++) step();
        var rounds = new List<double>();
        for (int r = 0; r < 3; r++)
        {
            GC.Collect();
            long calls = 0;
            sw.Restart();
            do
            {
                step();
                calls++;
            } while (sw.Elapsed.TotalSeconds < seconds / 3);
            rounds.Add(calls * itemsPerCall / sw.Elapsed.TotalSeconds);
        }
        double rate = BenchmarkCommand.Median(rounds);
        AnsiConsole.MarkupLine($"  {Markup.Escape(what)}: {rate:N0}/s");
        return rate;
    }

    // ---------------------------------------------------------------- report

    private static string N(double v) => double.IsNaN(v) ? "n/a" : v.ToString("N0", Invariant);

    private static string F(double v, int digits) => double.IsNaN(v) ? "n/a" : v.ToString("F" + digits, Invariant);

    private static string Bytes(long b) => b.ToString("N0", Invariant);

    private static string Render(List<LmRow> lm, List<ClassifierRow> classifiers, double seconds, int defaultThreads, string? load)
    {
        int cores = Environment.ProcessorCount;
        var sb = new StringBuilder();
        sb.AppendLine("## Scoring: the managed engine vs the TorchSharp forward");
        sb.AppendLine();
        sb.AppendLine(string.Create(Invariant, $"Word LMs of vocabulary {Vocabulary:N0}, embedding = hidden, one layer, **randomly initialized** (speed does not depend on the weights' values). " +
            $"Quantized model: TWN weights with weight normalization, embedding and decoder ternary too (`QuantizeEmbeddingAndDecoder`), packed by `PackedModelEncoder`. " +
            $"Float model: the same architecture with `QuantizerKind.None`, no normalization (libtorch's fused kernel). " +
            $"Engine: `LanguageModelScorer.Step` (embedding row, stack, 10k-way decoder logits; SIMD kernels unless noted), one thread. " +
            $"TorchSharp: `LanguageModelNetwork.Forward` on a [1, batch] token tensor under `no_grad` + `eval()`, state carried, logits computed; the quantized model's forward quantizes its weights on every call, as in training. " +
            $"Stock TorchSharp modules: `nn.Embedding` -> `nn.LSTM`/`nn.GRU` -> `nn.Linear` of the same sizes under `no_grad` + `eval()`, what a TorchSharp user would write (libtorch may take its oneDNN inference path there, which the library avoids for the LSTM: it gave wrong outputs on this CPU, see `FusedRecurrentKernel`). " +
            $"TorchSharp runs with `torch.set_num_threads(1)` unless the column says {defaultThreads} (the default here). " +
            $"Each figure: warm-up, then the median of 3 rounds of {seconds / 3:F2} s (Stopwatch). ") + BenchmarkCommand.Provenance(load));
        sb.AppendLine();
        sb.AppendLine("**Batch 1** (one stream, one token per call), tokens/s. \"engine, float model\" runs the float model packed as float32 matrices: " +
            "the engine's 2-bit ternary mat-vec runs at about its float32 one's speed per weight (see the BenchmarkDotNet figures below) from a sixteenth of the bytes, so the ternary model, whose 10k-way decoder dominates its step, scores at least as fast as the float one, " +
            "and faster where the float matrices outgrow the caches. The library's float LSTM recurrent step (\"torch float, embedding + stack only\") is slower than its GRU step: " +
            "`FusedRecurrentKernel.Lstm` runs `torch.lstm` with gradient mode on (to stay off libtorch's oneDNN inference path, which gave wrong LSTM outputs on this CPU), and in evaluation " +
            "the bias parameters still require grad, so an autograd graph is recorded too (a one-off probe: freezing the parameters removed the graph but not the gap to the GRU).");
        sb.AppendLine();
        sb.AppendLine(string.Create(Invariant, $"ONNX Runtime: the quantized model's ONNX export (`PackedModel.ExportToOnnx`, float and QDQ weights, see docs/onnx-export.md) in an `InferenceSession` with default optimizations and one intra-op thread. " +
            $"The export has no state input, so it runs on [1, {OnnxWindow}] windows of tokens from the zero state and gives the logits after each token: the same recurrent step and decoder per token as the engine's streaming step."));
        sb.AppendLine();
        sb.AppendLine($"| cell | hidden | engine | engine, reference kernels | engine, float model | engine, embedding + stack only | ONNX Runtime, float export | ONNX Runtime, QDQ export | torch float | torch float, {defaultThreads} threads | torch quantized | torch float, embedding + stack only | stock TorchSharp modules | engine / torch float | engine / stock modules | engine / ONNX Runtime float |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in lm)
            sb.AppendLine(Invariant, $"| {r.Cell} | {r.Hidden} | {N(r.EngineStep)} | {N(r.EngineReference)} | {N(r.EngineFloat)} | {N(r.EngineRecurrent)} | {N(r.OnnxFloat1)} | {N(r.OnnxQdq1)} | {N(r.TorchFloat1)} | {N(r.TorchFloatDefault)} | {N(r.TorchQuantized1)} | {N(r.TorchFloatRecurrent1)} | {N(r.StockTorch1)} | {F(r.EngineStep / r.TorchFloat1, 2)}x | {F(r.EngineStep / r.StockTorch1, 2)}x | {F(r.EngineStep / r.OnnxFloat1, 2)}x |");
        sb.AppendLine();
        sb.AppendLine(Invariant, $"**64 streams**, tokens/s over all streams. The engine has no batched path: 64 `LanguageModelScorer`s (own state, shared weights) each read one token per round, on one thread or split over {cores} threads (`Parallel.For`, one part per core); TorchSharp runs one [1, 64] forward per round.");
        sb.AppendLine();
        sb.AppendLine($"| cell | hidden | engine, 1 thread | engine, {cores} threads | torch float batch 64 | torch float batch 64, {defaultThreads} threads | torch quantized batch 64 | stock TorchSharp modules batch 64 |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in lm)
            sb.AppendLine(Invariant, $"| {r.Cell} | {r.Hidden} | {N(r.EngineStreams1)} | {N(r.EngineStreamsThreads)} | {N(r.TorchFloat64x1)} | {N(r.TorchFloat64Default)} | {N(r.TorchQuantized64x1)} | {N(r.StockTorch64x1)} |");
        sb.AppendLine();
        sb.AppendLine("**Size and load** of the packed LM (the `QPLM` stream a saved model holds): bytes of the stream, `SizeReport().PackedBytes` and float32 bytes; " +
            "bits per recurrent weight on disk (W_ih and W_hh: packed codes + float32 scales, per row under weight norm; then also with each matrix's 20-byte header) " +
            "and, for comparison, per-tensor TWN without weight norm (one scale per matrix); median of 5 reads of the stream from a file.");
        sb.AppendLine();
        sb.AppendLine("| cell | hidden | packed stream | SizeReport packed | float32 | recurrent bits/weight (codes + scales) | with headers | per-tensor TWN, no norm | load |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in lm)
            sb.AppendLine(Invariant, $"| {r.Cell} | {r.Hidden} | {Bytes(r.PackedStreamBytes)} B | {Bytes(r.SizeReportPackedBytes)} B | {Bytes(r.Float32Bytes)} B | {F(r.RecurrentBits, 3)} | {F(r.RecurrentBitsWithHeaders, 3)} | {F(r.PerTensorRecurrentBits, 3)} | {F(r.LoadMilliseconds, 1)} ms |");
        sb.AppendLine();
        sb.AppendLine(string.Create(Invariant, $"**Classifier through ML.NET**: `TokenizeIntoWords -> MapValueToKey -> BinaryClassification.Trainers.QuantizedGru` (TWN + weight norm, `QuantizeEmbeddingAndHead`, embedding = hidden), " +
            $"fitted for 10 steps of 32 rows on 2,000 synthetic rows of {ClassifierRowTokens} words (a ~10k-word Zipf vocabulary), saved with `mlContext.Model.Save`, loaded back. " +
            $"Rows of {ClassifierRowTokens} words through `PredictionEngine.Predict` (tokenizing, key mapping and the engine) and {ClassifierRowTokens} token ids straight through `SequenceClassifierScorer.Predict`, one thread. " +
            $"The zip also holds the pipeline's other parts, above all `MapValueToKey`'s vocabulary; the classifier's part is its transform folder (the packed classifier, its JSON description and token key map under Model/, and ML.NET's TrainSchema and Model.key), compressed bytes. " +
            $"Load: `mlContext.Model.Load` of the zip, the first in the process and the median of the next 5. Working set: a child process (this program with `--score-child`) that only loads the zip and scores 2,000 rows through a PredictionEngine, its peak (VmHWM)."));
        sb.AppendLine();
        sb.AppendLine("| hidden | PredictionEngine rows/s | engine rows/s | zip | classifier's part of the zip | its Model/ folder | packed stream | SizeReport packed | zip / SizeReport | classifier part / SizeReport | bits/quantized weight | first load | load | score-only child peak | child |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        foreach (var c in classifiers)
            sb.AppendLine(Invariant, $"| {c.Hidden} | {N(c.PredictionEngineRows)} | {N(c.EngineRows)} | {Bytes(c.ZipBytes)} B | {Bytes(c.ComponentBytes)} B | {Bytes(c.ModelFolderBytes)} B | {Bytes(c.PackedStreamBytes)} B | {Bytes(c.SizeReportPackedBytes)} B | {F((double)c.ZipBytes / c.SizeReportPackedBytes, 3)}x | {F((double)c.ComponentBytes / c.SizeReportPackedBytes, 3)}x | {F(c.BitsPerQuantizedWeight, 3)} | {F(c.FirstLoadMilliseconds, 1)} ms | {F(c.LoadMilliseconds, 1)} ms | {F(c.ChildPeakMegabytes, 1)} MiB | {c.ChildNote} |");
        sb.AppendLine();
        sb.AppendLine("**Targets (issue 12)**:");
        sb.AppendLine();
        foreach (var line in Targets(lm, classifiers)) sb.AppendLine("- " + line);
        sb.AppendLine();
        return sb.ToString();
    }

    private static IEnumerable<string> Targets(List<LmRow> lm, List<ClassifierRow> classifiers)
    {
        var at256 = lm.Where(r => r.Hidden == 256).ToList();
        if (at256.Count > 0)
        {
            bool met = at256.All(r => r.EngineStep >= 4 * r.TorchFloat1);
            yield return $"Engine >= 4x the TorchSharp float forward's tokens/s at batch 1, hidden 256: **{(met ? "met" : "not met")}** (" +
                string.Join("; ", at256.Select(r => string.Create(Invariant, $"{r.Cell} {r.EngineStep / r.TorchFloat1:F2}x: {r.EngineStep:N0} vs {r.TorchFloat1:N0} tokens/s, 1 torch thread; {r.EngineStep / r.TorchFloatDefault:F2}x against the default threads; {r.EngineStep / r.StockTorch1:F2}x against stock TorchSharp modules; the engine on the float32-packed model {r.EngineFloat / r.TorchFloat1:F2}x; embedding + stack alone, without the 10k-way decoder, {r.EngineRecurrent / r.TorchFloatRecurrent1:F2}x"))) + ").";
        }
        else yield return "Engine >= 4x torch float at hidden 256: not measured (256 not in --hidden).";
        var peaks = classifiers.Where(c => !double.IsNaN(c.ChildPeakMegabytes)).ToList();
        if (peaks.Count > 0)
        {
            double worst = peaks.Max(c => c.ChildPeakMegabytes);
            yield return string.Create(Invariant, $"A scoring-only app's working set under 100 MB: **{(worst * 1.048576 < 100 ? "met" : "not met")}** (score-only child, peak {worst:F1} MiB = {worst * 1.048576:F1} MB at the largest classifier; ") +
                "`build/consumer-smoke.sh`'s app on the runtime package alone reported VmHWM ~61 MB on this machine).";
        }
        var bits = lm.Select(r => r.RecurrentBits).ToList();
        if (bits.Count > 0)
        {
            var perTensor = lm.Select(r => r.PerTensorRecurrentBits).ToList();
            yield return string.Create(Invariant, $"Ternary recurrent weights on disk <= 2.05 bits/weight including scales: **{(bits.Max() <= 2.05 ? "met" : perTensor.Max() <= 2.05 ? "met for per-tensor TWN only" : "not met")}** ") +
                string.Create(Invariant, $"(TWN + weight norm, one float32 scale per row: {bits.Min():F3}..{bits.Max():F3} bits/weight, worst at the smallest hidden size; per-tensor TWN without weight norm: {perTensor.Min():F3}..{perTensor.Max():F3}). ") +
                string.Create(Invariant, $"<= 1.7 with base-3 packing (ternary codes are stored five trits a byte): **{(bits.Max() <= 1.7 ? "met" : perTensor.Max() <= 1.7 ? "met for per-tensor TWN; with weight norm's float32 scale per row only where the rows are long" : "not met")}** ") +
                string.Create(Invariant, $"(with weight norm, hidden {string.Join(", ", lm.Where(r => r.RecurrentBits <= 1.7).Select(r => r.Hidden).Distinct())} within 1.7).");
        }
        if (classifiers.Count > 0)
        {
            var met = classifiers.Where(c => c.ZipBytes <= 1.2 * c.SizeReportPackedBytes).Select(c => c.Hidden).ToList();
            var partMet = classifiers.Where(c => c.ComponentBytes <= 1.2 * c.SizeReportPackedBytes).Select(c => c.Hidden).ToList();
            string verdict = met.Count == classifiers.Count ? "met" : met.Count > 0 ? $"met at hidden {string.Join(", ", met)} only" : "not met";
            yield return string.Create(Invariant, $"The saved ML.NET zip of a classifier with a quantized embedding within 1.2x of SizeReport()'s bytes: **{verdict}** for the whole zip (") +
                string.Join("; ", classifiers.Select(c => string.Create(Invariant, $"hidden {c.Hidden}: {c.ZipBytes:N0} / {c.SizeReportPackedBytes:N0} = {(double)c.ZipBytes / c.SizeReportPackedBytes:F3}x"))) +
                string.Create(Invariant, $"); the classifier's own part of the zip is within 1.2x at hidden {(partMet.Count == 0 ? "none" : string.Join(", ", partMet))} (") +
                string.Join("; ", classifiers.Select(c => string.Create(Invariant, $"{(double)c.ComponentBytes / c.SizeReportPackedBytes:F3}x"))) + "). The rest of the zip is the tokenizer and `MapValueToKey`'s 10k-word vocabulary.";
        }
    }
}
