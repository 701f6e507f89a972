using System.Reflection;
using System.Runtime.ExceptionServices;

namespace Microsoft.ML.Quantized;

/// <summary>
/// The one place the scoring runtime reaches into the training package (Microsoft.ML.Quantized), by name and only
/// when a model file needs it: models saved before packed models existed hold only float training weights, and packing
/// them needs libtorch.
/// </summary>
internal static class TrainingPackage
{
    private const string PackerType = "Microsoft.ML.Quantized.TrainedModelParts, Microsoft.ML.Quantized";

    /// <summary>
    /// Packs the training-model bytes of an old-format model with the training package's <paramref name="method"/>.
    /// </summary>
    /// <exception cref="ModelFormatException">The training package is not part of this application.</exception>
    public static TParts Pack<TParts>(string method, byte[] trainingModel, string what)
    {
        var packer = Type.GetType(PackerType, throwOnError: false)?.GetMethod(method, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static);
        if (packer is null)
            throw new ModelFormatException(
                $"this {what} was saved by an earlier Microsoft.ML.Quantized (before packed models, component format 0x00010003) and holds only " +
                "float training weights, which need libtorch to pack. Reference the training package Microsoft.ML.Quantized (and a libtorch package) " +
                "in this application to load it, or load it once in an application that does and save it again: the new file scores with " +
                "Microsoft.ML.Quantized.Runtime alone.");
        try
        {
            return (TParts)packer.Invoke(null, [trainingModel])!;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
