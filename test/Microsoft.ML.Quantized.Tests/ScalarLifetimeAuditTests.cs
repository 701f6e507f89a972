using System.Reflection;
using System.Reflection.Emit;
using TorchSharp;

namespace Microsoft.ML.Quantized.Tests;

/// <summary>
/// The static half of <see cref="ScalarsTests"/>: TorchSharp 0.107 lets a Scalar that only a call's argument refers to be
/// finalized while libtorch still reads it (no <c>GC.KeepAlive</c> after its native calls), so training crashed now and
/// then with "Unknown scalar type" (gradient clipping, the optimizer step). This reads the IL of every method of the
/// library and fails on each call that hands libtorch such a temporary: an implicit conversion to Scalar, a
/// <c>ToScalar()</c> that is not disposed, or a TorchSharp method that makes one itself (the one-argument
/// <c>add</c>'s alpha of 1, <c>arange(start, stop)</c>'s step, ...), or a TorchSharp optimizer whose <c>step</c> does.
/// </summary>
[TestClass]
public sealed class ScalarLifetimeAuditTests
{
    [TestMethod]
    [DataRow("Microsoft.ML.Quantized")]
    [DataRow("Microsoft.ML.Quantized.Samples")]
    public void No_method_hands_libtorch_a_temporary_scalar(string assembly)
    {
        var audit = new ScalarLifetimeAudit();
        var findings = audit.Audit(Assembly.Load(assembly));
        Console.WriteLine(string.Join("\n", findings));
        Assert.AreEqual(0, findings.Count, "Temporary Scalars passed to libtorch:\n" + string.Join("\n", findings));
    }

    [TestMethod]
    public void The_audit_finds_each_kind_of_temporary()
    {
        // The audit must be able to fail: methods here that make each mistake once, and one that makes none.
        var audit = new ScalarLifetimeAudit();
        var findings = audit.Audit(typeof(ScalarLifetimeAuditTests).Assembly)
            .Where(f => f.StartsWith(typeof(Mistakes).FullName!, StringComparison.Ordinal)).ToList();
        CollectionAssert.AreEquivalent(new[]
        {
            $"{typeof(Mistakes).FullName}.{nameof(Mistakes.Implicit)}: implicit conversion to Scalar",
            $"{typeof(Mistakes).FullName}.{nameof(Mistakes.NotDisposed)}: ToScalar() not disposed (more ToScalar() calls than Dispose() calls)",
            $"{typeof(Mistakes).FullName}.{nameof(Mistakes.AlphaOfOne)}: TorchSharp.torch+Tensor.add(Tensor) makes a temporary Scalar",
            $"{typeof(Mistakes).FullName}.{nameof(Mistakes.TorchSharpOptimizer)}: creates a TorchSharp.Modules.Adam, whose step makes temporary Scalars",
            $"{typeof(Mistakes).FullName}.{nameof(Mistakes.DefaultStep)}: TorchSharp.torch.arange(Scalar, Scalar, Nullable`1, Device, Boolean) makes a temporary Scalar",
        }, findings);
    }

    private static class Mistakes
    {
        public static torch.Tensor Implicit(torch.Tensor x) => x.mul(2.0);

        public static torch.Tensor NotDisposed(torch.Tensor x, double v) => x.mul(v.ToScalar());

        public static torch.Tensor AlphaOfOne(torch.Tensor x) => x.add(x);

        public static torch.Tensor DefaultStep(Scalar start, Scalar stop) => torch.arange(start, stop);

        public static TorchSharp.Modules.OptimizerHelper TorchSharpOptimizer(torch.Tensor w) => torch.optim.Adam(new[] { new TorchSharp.Modules.Parameter(w) });

        public static torch.Tensor Held(torch.Tensor x, double v)
        {
            using var s = v.ToScalar();
            return x.mul(s).add(x, Scalars.One);
        }
    }
}

/// <summary>Walks method IL and classifies calls that pass TorchSharp a Scalar no caller keeps alive.</summary>
internal sealed class ScalarLifetimeAudit
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    private readonly Assembly _torchSharp = typeof(Scalar).Assembly;
    private readonly Dictionary<MethodBase, bool> _makesTemporary = new();

    /// <summary>One line per offending call site: "Type.Method: what it does".</summary>
    public List<string> Audit(Assembly assembly)
    {
        const BindingFlags all = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        var findings = new List<string>();
        foreach (var type in assembly.GetTypes())
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                // Static fields hold their Scalars for the process; a method that returns a Scalar hands it over.
                if (method is ConstructorInfo { IsStatic: true } || ReturnsScalar(method)) continue;
                var calls = Calls(method);
                int disposals = calls.Count(IsDispose);
                string site = $"{type.FullName}.{method.Name}";
                foreach (var callee in calls.Distinct())
                {
                    if (TakesNoScalars(type, callee)) continue;
                    if (IsImplicitConversion(callee)) findings.Add($"{site}: implicit conversion to Scalar");
                    else if (IsToScalar(callee) && calls.Count(IsToScalar) > disposals) findings.Add($"{site}: ToScalar() not disposed (more ToScalar() calls than Dispose() calls)");
                    else if (MakesTemporary(callee, depth: 0))
                        findings.Add($"{site}: {callee.DeclaringType!.FullName}.{callee.Name}({string.Join(", ", callee.GetParameters().Select(p => p.ParameterType.Name))}) makes a temporary Scalar");
                    else if (CreatedOptimizer(method, callee) is { } optimizer && optimizer.GetMethod("step") is { } step && MakesTemporary(step, depth: 0))
                        findings.Add($"{site}: creates a {optimizer.FullName}, whose step makes temporary Scalars");
                }
            }
        return findings;
    }

    /// <summary>Whether a TorchSharp method creates a Scalar it neither disposes nor returns, itself or through a TorchSharp callee.</summary>
    private bool MakesTemporary(MethodBase method, int depth)
    {
        if (method.Module.Assembly != _torchSharp || IsImplicitConversion(method) || IsToScalar(method)) return false;
        if (ReturnsScalar(method)) return false;
        if (_makesTemporary.TryGetValue(method, out var known)) return known;
        _makesTemporary[method] = false; // a recursive chain ends here
        var calls = Calls(method);
        bool makes = calls.Count(c => IsImplicitConversion(c) || IsToScalar(c)) > calls.Count(IsDispose)
                     || (depth < 4 && calls.Any(c => MakesTemporary(c, depth + 1)));
        _makesTemporary[method] = makes;
        return makes;
    }

    /// <summary>
    /// The TorchSharp optimizer type a call creates (a constructor or a factory such as <c>torch.optim.Adam</c>): its
    /// <c>step</c> runs later through a virtual call the IL cannot follow, so the audit checks it where it is created.
    /// </summary>
    private Type? CreatedOptimizer(MethodBase caller, MethodBase callee)
    {
        if (callee is ConstructorInfo && caller is ConstructorInfo && caller.DeclaringType!.IsSubclassOf(callee.DeclaringType!))
            return null; // a subclass's base(...) call: its own step is audited as its own method
        var type = callee is ConstructorInfo ? callee.DeclaringType : (callee as MethodInfo)?.ReturnType;
        return type is not null && type.Assembly == _torchSharp && typeof(TorchSharp.Modules.OptimizerHelper).IsAssignableFrom(type) ? type : null;
    }

    /// <summary>
    /// A call the IL flags but whose arguments make no Scalar: TorchScript's <c>invoke</c> converts double, float and long
    /// arguments to Scalars, and the fused kernel passes only tensors, a tensor array and a bool.
    /// </summary>
    private static bool TakesNoScalars(Type site, MethodBase callee) =>
        site == typeof(FusedRecurrentKernel) && callee.DeclaringType == typeof(torch.jit.CompilationUnit) && callee.Name == "invoke";

    private static bool ReturnsScalar(MethodBase m) => m is MethodInfo { ReturnType: var r } && r == typeof(Scalar);

    private static bool IsImplicitConversion(MethodBase m) => m.DeclaringType == typeof(Scalar) && m.Name == "op_Implicit";

    private static bool IsToScalar(MethodBase m) =>
        m.DeclaringType == typeof(ScalarExtensionMethods) && m is MethodInfo { ReturnType: var r } && r == typeof(Scalar);

    /// <summary>A Dispose call: <c>using var s = v.ToScalar()</c> disposes through <see cref="IDisposable"/>.</summary>
    private static bool IsDispose(MethodBase m) =>
        (m.DeclaringType == typeof(Scalar) || m.DeclaringType == typeof(IDisposable)) && m.Name == nameof(IDisposable.Dispose);

    /// <summary>The methods <paramref name="method"/>'s IL calls, constructs or takes the address of.</summary>
    private static List<MethodBase> Calls(MethodBase method)
    {
        var result = new List<MethodBase>();
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or BadImageFormatException) { il = null; }
        if (il is null) return result;
        var typeArguments = method.DeclaringType is { IsGenericType: true } t ? t.GetGenericArguments() : null;
        var methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            if (op.OperandType == OperandType.InlineMethod)
            {
                try { if (method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArguments, methodArguments) is { } callee) result.Add(callee); }
                catch (Exception e) when (e is ArgumentException or TypeLoadException or FileNotFoundException or MissingMethodException) { }
            }
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
        return result;
    }
}
