using System.Globalization;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>The <c>--seeds</c> list of the commands that run once per seed (study, kure): one rule and one set of messages.</summary>
internal static class SeedList
{
    /// <summary>
    /// Parses comma-separated seeds: whole numbers from 1, duplicates dropped, in the order given, at least one; anything else is
    /// an <see cref="ArgumentException"/> naming <c>--seeds</c> and the entry at fault.
    /// </summary>
    public static int[] Parse(string text)
    {
        var seeds = OptionList.Split(text)
            .Select(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s >= 1
                ? s
                : throw new ArgumentException($"--seeds holds '{p}': each seed must be a whole number from 1, e.g. 1,2,3."))
            .Distinct().ToArray();
        return seeds.Length > 0 ? seeds : throw new ArgumentException("--seeds needs at least one seed, e.g. 1,2,3.");
    }
}
