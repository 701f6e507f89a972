using Microsoft.ML;
using Microsoft.ML.Quantized;
using Microsoft.ML.Runtime;

// ML.NET models saved before the scoring runtime was split out name this assembly as their components' loader, so it
// registers the runtime's loaders too: ML.NET loads the assembly a model names and looks the loader signature up in it.
[assembly: LoadableClass(QuantizedRecurrentLanguageModelTransformer.Summary, typeof(QuantizedRecurrentLanguageModelTransformer), null,
    typeof(SignatureLoadModel), QuantizedRecurrentLanguageModelTransformer.UserName, QuantizedRecurrentLanguageModelTransformer.LoaderSignature)]
[assembly: LoadableClass(typeof(SequenceClassifierBinaryModelParameters), null, typeof(SignatureLoadModel),
    SequenceClassifierBinaryModelParameters.UserName, SequenceClassifierBinaryModelParameters.LoaderSignature)]
[assembly: LoadableClass(typeof(SequenceClassifierMulticlassModelParameters), null, typeof(SignatureLoadModel),
    SequenceClassifierMulticlassModelParameters.UserName, SequenceClassifierMulticlassModelParameters.LoaderSignature)]
