using System.Reflection;
using Microsoft.ML;

namespace Microsoft.ML.Quantized.Tests.MLNet;

[TestClass]
public sealed class SupportedMLNetTests
{
    [TestMethod]
    [DataRow("5.0.1+a4f730ec0c9106c2c9ef9e1fa34011374115fb98")]
    [DataRow("6.0.0+6eff5ccedce81728c927bfa0155284aadd38531d")]
    [DataRow("6.0.3-preview.1+abc")]
    public void ML_NET_5_and_6_releases_are_supported(string informationalVersion) =>
        Assert.IsNull(SupportedMLNet.ErrorFor(informationalVersion));

    [TestMethod]
    [DataRow("7.0.0+0123", "7.0.0")]
    [DataRow("4.0.2", "4.0.2")]
    [DataRow(null, "(version not recorded)")]
    public void Other_releases_are_named_with_the_supported_ones(string? informationalVersion, string named)
    {
        var error = SupportedMLNet.ErrorFor(informationalVersion);
        Assert.IsNotNull(error);
        StringAssert.Contains(error, $"this app loaded Microsoft.ML {named}");
        StringAssert.Contains(error, "runs on Microsoft.ML 5.0.x and 6.0.x");
    }

    [TestMethod]
    public void The_ML_NET_this_suite_runs_on_is_the_one_asked_for()
    {
        // build/test.sh runs the suite twice: on the 5.0.1 the library builds against, and with MicrosoftMLTestVersion=6.0.0.
        var loaded = typeof(MLContext).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
        var asked = Environment.GetEnvironmentVariable("QUANTIZED_EXPECTED_MLNET");
        if (asked is not null) Assert.AreEqual(asked, loaded);
        Assert.IsNull(SupportedMLNet.ErrorFor(loaded));
    }
}
