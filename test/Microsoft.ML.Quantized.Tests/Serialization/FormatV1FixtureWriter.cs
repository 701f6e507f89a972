// Writes the format-v1 fixtures (see FormatV1Fixtures.cs for what they are and the command that regenerates them).
// Runs only with QUANTIZED_WRITE_FORMAT_FIXTURES=1; otherwise MSTest reports it as skipped.

using System.Reflection;
using System.Text.Json;
using Microsoft.ML;

namespace Microsoft.ML.Quantized.Tests.Serialization;

/// <summary>Runs the test only when an environment variable is "1"; otherwise MSTest reports it as skipped (not passed, not failed).</summary>
[AttributeUsage(AttributeTargets.Method | AttributeTargets.Class, AllowMultiple = false)]
public sealed class EnvironmentVariableConditionAttribute : ConditionBaseAttribute
{
    public EnvironmentVariableConditionAttribute(string variable) : base(ConditionMode.Include)
    {
        Variable = variable;
        IgnoreMessage = $"Set {variable}=1 to run this test (it rewrites committed fixture files).";
    }

    public string Variable { get; }

    public override bool IsConditionMet => Environment.GetEnvironmentVariable(Variable) == "1";

    public override string GroupName => nameof(EnvironmentVariableConditionAttribute);
}

[TestClass]
public sealed class FormatV1FixtureWriter
{
    public const string Variable = "QUANTIZED_WRITE_FORMAT_FIXTURES";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [EnvironmentVariableCondition(Variable)]
    public void Write_format_v1_fixtures()
    {
        var directory = FormatV1Fixtures.SourceDirectory();
        Directory.CreateDirectory(directory);
        foreach (var name in FormatV1Fixtures.Names)
        {
            var kind = FormatV1Fixtures.KindOf(name);
            var ml = new MLContext(seed: 1);
            var train = FormatV1Fixtures.TrainingData(ml, name);
            var fitted = FormatV1Fixtures.Pipeline(ml, name).Fit(train);
            var zip = Path.Combine(directory, FormatV1Fixtures.ZipName(name));
            ml.Model.Save(fitted, train.Schema, zip);

            var inputs = FormatV1Fixtures.ScoringRows(name);
            var fromFitted = FormatV1Fixtures.Score(fitted, kind, inputs, ml);
            var loadContext = new MLContext(seed: 2);
            var loaded = loadContext.Model.Load(zip, out _);
            var fromLoaded = FormatV1Fixtures.Score(loaded, kind, inputs, loadContext);
            MLNet.QuantizedSequenceTrainerTests.DisposeModel(fitted);
            MLNet.QuantizedSequenceTrainerTests.DisposeModel(loaded);
            // The expected outputs are those of the loaded model (what the compatibility test recomputes); the fitted
            // model must give the same bits, or the save/load round trip of this build is already lossy.
            AssertSameBits(fromFitted, fromLoaded, name + " fitted vs loaded");
            if (kind == FixtureKind.BinaryTokens)
                foreach (var row in fromLoaded)
                    Assert.IsGreaterThan(1e-3f, MathF.Abs(row.Score!.Value), $"{name}: '{row.Text}' scores {row.Score} next to the threshold; pick other rows");

            var fixture = new FormatFixture
            {
                Name = name,
                Kind = kind,
                Description = FormatV1Fixtures.Description(name),
                Zip = FormatV1Fixtures.ZipName(name),
                WrittenBy = $"Microsoft.ML.Quantized {ModelFile.LibraryVersion}, Microsoft.ML {MlNetVersion}, {DateTime.UtcNow:yyyy-MM-dd}",
                ModelFileFormatVersion = ModelFile.FormatVersion,
                Rows = fromLoaded,
            };
            var json = Path.Combine(directory, FormatV1Fixtures.ExpectedName(name));
            File.WriteAllText(json, JsonSerializer.Serialize(fixture, FormatV1Fixtures.Json) + "\n");
            // Floats must parse back to the same bits.
            AssertSameBits(fromLoaded, FormatV1Fixtures.ReadExpected(directory, name).Rows, name + " JSON round trip");
            TestContext.WriteLine($"{name}: {new FileInfo(zip).Length} bytes zip, {new FileInfo(json).Length} bytes expected outputs");
        }
    }

    private static string MlNetVersion =>
        typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(MLContext).Assembly.GetName().Version!.ToString();

    private static void AssertSameBits(List<FixtureRow> expected, List<FixtureRow> actual, string what)
    {
        Assert.HasCount(expected.Count, actual, what);
        for (int i = 0; i < expected.Count; i++)
        {
            var (e, a) = (expected[i], actual[i]);
            SameBits(e.Features, a.Features, $"{what}, row {i} Features");
            SameBits(e.Scores, a.Scores, $"{what}, row {i} Scores");
            SameBits(e.Frames, a.Frames, $"{what}, row {i} Frames");
            SameBits(e.Perplexity, a.Perplexity, $"{what}, row {i} Perplexity");
            SameBits(e.Score, a.Score, $"{what}, row {i} Score");
            SameBits(e.Probability, a.Probability, $"{what}, row {i} Probability");
            Assert.AreEqual(e.PredictedBinaryLabel, a.PredictedBinaryLabel, $"{what}, row {i}");
            Assert.AreEqual(e.PredictedLabel, a.PredictedLabel, $"{what}, row {i}");
            Assert.AreEqual(e.Text, a.Text, $"{what}, row {i}");
        }
    }

    private static void SameBits(float? e, float? a, string what) =>
        Assert.AreEqual(e is null ? (int?)null : BitConverter.SingleToInt32Bits(e.Value), a is null ? (int?)null : BitConverter.SingleToInt32Bits(a.Value), $"{what}: {e} vs {a}");

    private static void SameBits(float[]? e, float[]? a, string what)
    {
        Assert.AreEqual(e is null, a is null, what);
        if (e is null) return;
        Assert.HasCount(e.Length, a!, what);
        for (int i = 0; i < e.Length; i++) SameBits(e[i], a![i], $"{what}[{i}]");
    }
}
