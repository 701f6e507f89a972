using System.Reflection;

namespace Microsoft.ML.Quantized.Tests.Inference;

/// <summary>The scoring runtime stays free of TorchSharp: what an app that only scores loads.</summary>
[TestClass]
public sealed class RuntimeAssemblyTests
{
    private static readonly Assembly Runtime = typeof(PackedLanguageModelNetwork).Assembly;

    [TestMethod]
    public void The_scoring_components_live_in_the_runtime_assembly()
    {
        Assert.AreEqual("Microsoft.ML.Quantized.Runtime", Runtime.GetName().Name);
        foreach (var type in new[] { typeof(QuantizedRecurrentLanguageModelTransformer), typeof(SequenceClassifierBinaryModelParameters),
                     typeof(SequenceClassifierMulticlassModelParameters), typeof(PackedSequenceClassifierNetwork), typeof(ModelSizeReport) })
            Assert.AreSame(Runtime, type.Assembly, type.Name);
        Assert.AreEqual("Microsoft.ML.Quantized", typeof(QuantizedLanguageModel).Assembly.GetName().Name);
    }

    [TestMethod]
    public void The_runtime_assembly_references_nothing_of_TorchSharp()
    {
        var references = Runtime.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        CollectionAssert.Contains(references, "Microsoft.ML.Core");
        Assert.IsFalse(references.Any(r => r.Contains("Torch", StringComparison.OrdinalIgnoreCase)), string.Join(", ", references));
        Assert.IsFalse(references.Contains("Microsoft.ML.Quantized"), "the runtime must not reference the training assembly");
    }
}
