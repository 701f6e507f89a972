namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>The recurrent cell as the commands' <c>--cell</c> / <c>--cells</c> options name it: <c>lstm</c> or <c>gru</c>.</summary>
internal static class CellOption
{
    /// <summary>The cell <paramref name="name"/> names (any case); an unknown name fails naming <paramref name="option"/> and the choices.</summary>
    public static RecurrentCellKind Parse(string name, string option) => name.ToLowerInvariant() switch
    {
        "lstm" => RecurrentCellKind.Lstm,
        "gru" => RecurrentCellKind.Gru,
        _ => throw new ArgumentException($"{option}: unknown cell '{name}' (lstm, gru)."),
    };

    /// <summary>A comma-separated list of cell names (e.g. <c>lstm,gru</c>), each parsed by <see cref="Parse"/>.</summary>
    public static List<RecurrentCellKind> ParseList(string names, string option) =>
        OptionList.Split(names).Select(name => Parse(name, option)).ToList();
}
