using System.Diagnostics;

namespace Microsoft.ML.Quantized.Tests.Samples;

/// <summary>Runs the samples CLI (built next to the tests) as a child <c>dotnet</c> process, as a user would.</summary>
internal static class SamplesCli
{
    private static readonly string SamplesDll = Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Quantized.Samples.dll");

    /// <summary>Runs the CLI with <paramref name="arguments"/>; returns its exit code and its standard error followed by its standard output.</summary>
    public static (int ExitCode, string Output) Run(params string[] arguments)
    {
        Assert.IsTrue(File.Exists(SamplesDll), $"{SamplesDll} is not built next to the tests");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(SamplesDll);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{string.Join(' ', arguments)}' did not finish within 2 minutes");
        }
        return (process.ExitCode, error + output.Result);
    }
}
