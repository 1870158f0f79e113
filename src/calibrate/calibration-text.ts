// The built-in calibration text of `quantlab calibrate` and the Calibration tab: short
// stories in the style of TinyStories (simple words, which the tiny models quantlab runs
// predict well), written for quantlab (MIT, as the rest of the project). About 1,300 tokens
// with stories260K's 512-token vocabulary: GPTQ's Hessian of a 172-column layer needs more
// input rows than the budget scan's 64-token text gives. None of it is the eval text
// (model/eval-text.ts), which the comparison measures on as held-out text.
export const CALIBRATION_STORIES = [
  'Once upon a time, there was a little girl named Sue. Sue loved to draw with her crayons. ' +
    'She drew a big yellow sun, a blue sky and a tall tree with green leaves. ' +
    'One day, her brother Ben took her red crayon and ran away. Sue was very upset. ' +
    'She said, "Ben, please give it back. I need it to draw a flower." ' +
    'Ben felt bad. He came back and gave her the crayon. Then he said, "Can I draw with you?" ' +
    'Sue smiled and said yes. They drew a house, a cat and a happy family together. ' +
    'Their mom put the picture on the wall, and they were proud.',
  'One day, a little bird named Pip wanted to fly high in the sky. But Pip was scared. ' +
    'His mother said, "Do not be afraid. Flap your wings and try." ' +
    'Pip jumped from the nest and flapped his wings very fast. At first he fell down a little, ' +
    'but then the wind helped him go up. Pip flew over the pond and over the hill. ' +
    'He saw a frog, a duck and a big brown cow. Pip was so happy. ' +
    'When the sun went down, he flew back to his nest and told his mother about his day. ' +
    'She gave him a warm hug, and Pip fell asleep with a smile.',
  'There was a big old car in the garage. Nobody drove it anymore, and it was very dusty. ' +
    'One day, a boy named Sam found the car. He said, "This car is sad. I will help it." ' +
    'Sam got a bucket of water and a soft cloth. He washed the car until it was shiny and red. ' +
    'His dad saw the car and laughed. "You did a great job, Sam," he said. ' +
    'The next day, Dad and Sam took the car for a ride to the beach. ' +
    'They ate ice cream and played in the sand. The old car was happy again.',
  'Anna had a small garden behind her house. She planted seeds in the dirt and gave them water every day. ' +
    'She waited and waited, but nothing grew. Anna asked her grandma, "Why are my plants not growing?" ' +
    'Grandma said, "You must be patient. Good things take time." ' +
    'Anna kept giving the seeds water and sun. After many days, she saw tiny green leaves. ' +
    'Soon there were carrots, beans and pretty pink flowers. ' +
    'Anna picked a flower and gave it to her grandma. Grandma said, "Thank you, my dear. You learned to wait."',
  'Lucy and her friend Tom went to the park to play. They saw a big slide and a swing. ' +
    'Tom wanted the swing first, and Lucy wanted it too. They started to fight. ' +
    'A kind lady said, "Why do you not take turns? Then you can both have fun." ' +
    'Lucy let Tom swing first, and then Tom pushed Lucy on the swing. ' +
    'They laughed and played until it was time to go home. ' +
    'On the way home, Lucy said, "Sharing is more fun than fighting." Tom agreed, and they held hands.',
  'Once there was a fluffy white bunny who lived in the woods. The bunny liked to hop and eat carrots. ' +
    'One cold night, it began to snow. The bunny was cold and could not find its home. ' +
    'A wise old owl saw the bunny and said, "Follow me. I know the way." ' +
    'The owl flew slowly so the bunny could follow. Soon they came to a hole under a big tree. ' +
    'It was the bunny\'s home! The bunny thanked the owl and went inside where it was warm. ' +
    'From that night on, the bunny and the owl were good friends.',
];

export const CALIBRATION_STORY_TEXT = CALIBRATION_STORIES.join('\n\n');

/** The built-in text's name where a file name would go (imatrix.datasets, quantize.gptq.dataset). */
export const BUILTIN_CALIBRATION_DATASET = 'quantlab built-in calibration text';
