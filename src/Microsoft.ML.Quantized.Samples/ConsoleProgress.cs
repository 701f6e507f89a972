using Spectre.Console;

namespace Microsoft.ML.Quantized.Samples;

/// <summary>Runs training under a Spectre.Console progress bar fed by the library's progress reports.</summary>
internal static class ConsoleProgress
{
    public static T Run<T>(string title, Func<IProgress<TrainingProgress>, T> train)
    {
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(Markup.Escape(title), maxValue: 1.0);
                result = train(new Reporter(report =>
                {
                    task.Value = report.Fraction;
                    var validation = report.ValidationLoss is { } v ? $" val {v:F3}" : "";
                    task.Description = Markup.Escape($"{title} e{report.Epoch}/{report.Epochs} loss {report.Loss:F3}{validation} {report.UnitsPerSecond:N0} tok/s");
                }));
                task.Value = 1.0;
            });
        return result;
    }

    /// <summary>Synchronous IProgress (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class Reporter(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
