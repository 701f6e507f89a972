// The training components use ML.NET internals too (trainer and estimator plumbing, CatalogUtils); the runtime lets them
// through because this assembly also declares the attribute (defined in Microsoft.ML.Quantized.Runtime, see
// build/Publicize.targets).
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Core")]
[assembly: System.Runtime.CompilerServices.IgnoresAccessChecksTo("Microsoft.ML.Data")]
