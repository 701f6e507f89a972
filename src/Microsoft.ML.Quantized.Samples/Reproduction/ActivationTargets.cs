namespace Microsoft.ML.Quantized.Samples.Reproduction;

/// <summary>The command lines' names for <see cref="RecurrentActivations"/>: gates, hidden and cell joined by '+', e.g. <c>gates+cell</c>.</summary>
internal static class ActivationTargets
{
    /// <summary>The name <see cref="Parse"/> reads back, e.g. <c>gates+cell</c>.</summary>
    public static string Name(RecurrentActivations activations) =>
        string.Join("+", new[] { (RecurrentActivations.Gates, "gates"), (RecurrentActivations.Hidden, "hidden"), (RecurrentActivations.CellState, "cell") }
            .Where(t => activations.HasFlag(t.Item1)).Select(t => t.Item2));

    /// <summary>The activations <paramref name="list"/> names; <paramref name="context"/> leads the error message (the option and its value).</summary>
    /// <exception cref="ArgumentException">A name is not gates, hidden or cell.</exception>
    public static RecurrentActivations Parse(string list, string context) => list.Split('+').Aggregate(RecurrentActivations.None, (all, name) => all | name.Trim() switch
    {
        "gates" => RecurrentActivations.Gates,
        "hidden" => RecurrentActivations.Hidden,
        "cell" => RecurrentActivations.CellState,
        _ => throw new ArgumentException($"{context} names the activation '{name}'; join gates, hidden and cell with '+', e.g. gates+cell."),
    });
}
